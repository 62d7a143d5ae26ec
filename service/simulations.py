"""Simulations: "does active learning help on my data?", as a background job.

The same replay as ``alrank simulate``, run by a worker: send labelled rows (or name a
project whose labels to use), follow the job's progress, then fetch the summary, the
curves as CSV and the plot.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, Response, url_for
from flask.views import MethodView
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service import examples_measures
from service.auth import principal
from service.bodies import Blueprint
from service.common import load_project, name_field
from service.errors import answers_404
from service.extensions import api, backend
from service.jobs import _error_line, _iso
from workers import defaults, limits
from workers.exceptions import InvalidInput, NotFound
from workers.features import VECTORIZERS, check_vectorizer
from workers.model_kinds import CLASSIFIERS
from workers.settings import AL_DEFAULTS, active_learning
from workers.simulation import job as simulation_job
from workers.simulation.spec import Settings
from workers.strategies import STRATEGIES

blp = Blueprint(
    "simulations",
    __name__,
    url_prefix="/v1/simulations",
    description="Replay annotation on labelled data and compare strategies against random",
)


class RowSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Ignored; allowed so data sets can be sent as they are"})
    text = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=limits.MAX_TEXT_CHARS),
        metadata={"description": "The row's text (or send features)"},
    )
    features = ma.fields.List(
        ma.fields.Raw(allow_none=True),
        allow_none=True,
        validate=ma.validate.Length(max=limits.MAX_VECTOR_DIM),
        metadata={"description": "Numbers, or strings for categorical columns; null when missing"},
    )
    label = ma.fields.String(required=True, metadata={"description": "The row's true label"})


class SourceSchema(ma.Schema):
    project = name_field("A project whose labelled items to replay")
    schema = ma.fields.String(required=True, metadata={"description": "The schema whose labels to replay"})


class SimulationRequestSchema(ma.Schema):
    train = ma.fields.List(
        ma.fields.Nested(RowSchema),
        validate=ma.validate.Length(min=2, max=limits.MAX_SIMULATION_ROWS),
        metadata={"description": "Labelled rows: text (or features) and label"},
    )
    test = ma.fields.List(
        ma.fields.Nested(RowSchema),
        allow_none=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_SIMULATION_ROWS),
        metadata={"description": "Held-out rows (default: a random test_fraction of train)"},
    )
    source = ma.fields.Nested(
        SourceSchema,
        metadata={"description": "Instead of train: a project's labelled items, with its settings"},
    )
    strategies = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(STRATEGIES)),
        validate=ma.validate.Length(min=1, max=len(STRATEGIES)),
        metadata={"description": "Strategies to compare; random is always added (default: the project's)"},
    )
    loop = ma.fields.String(
        load_default="served",
        validate=ma.validate.OneOf(["served", "seeded"]),
        metadata={
            "description": "served: the loop the service runs, from its cold start, each repeat on a "
            "random 90% of the pool (default); seeded: a random seed set, then each round the "
            "head of the service's ranking (the strategy's picks, class-balanced)"
        },
    )
    seed_size = ma.fields.Integer(
        load_default=defaults.SIMULATION_SEED_SIZE,
        validate=ma.validate.Range(1, 100_000),
        metadata={"description": "Random labels a seeded replay starts from"},
    )
    batch_size = ma.fields.Integer(
        load_default=defaults.SIMULATION_BATCH_SIZE,
        validate=ma.validate.Range(1, 10_000),
        metadata={"description": "Items labelled per round"},
    )
    budget = ma.fields.Integer(
        load_default=defaults.SIMULATION_BUDGET,
        validate=ma.validate.Range(1, limits.MAX_SIMULATION_ROWS),
        metadata={"description": "Labels after which a replay stops"},
    )
    repeats = ma.fields.Integer(
        load_default=defaults.SIMULATION_REPEATS,
        validate=ma.validate.Range(1, limits.MAX_SIMULATION_REPEATS),
        metadata={"description": "Replays per strategy"},
    )
    test_fraction = ma.fields.Float(
        load_default=defaults.SIMULATION_TEST_FRACTION,
        validate=ma.validate.Range(0.05, 0.9),
        metadata={"description": "Share held out for measuring when no test rows are sent"},
    )
    seed = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(0, 2**31 - 1),
        metadata={"description": "Seed of every random choice, for a reproducible run"},
    )
    vectorizer_name = ma.fields.String(
        validate=ma.validate.OneOf(VECTORIZERS),
        metadata={"description": "Text features (default: the project's, or the service default)"},
    )
    classifier_name = ma.fields.String(
        validate=ma.validate.OneOf(CLASSIFIERS),
        metadata={"description": "Model (default: the project's, or logistic_regression)"},
    )

    @ma.validates_schema
    def one_source(self, data, **kwargs):
        if ("train" in data) == ("source" in data):
            raise ma.ValidationError("send either train rows or a source project, not both", "train")
        if "source" in data and data.get("test"):
            raise ma.ValidationError("test rows go with train rows, not with a source project", "test")


class SimulationRefSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The simulation's id"})
    status_url = ma.fields.String(metadata={"description": "Where to follow it"})


class SimulationSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The simulation's id"})
    status = ma.fields.String(
        metadata={"description": "queued, started, finished, failed, stopped or canceled"}
    )
    progress = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "while it runs: stage (features while they are computed, then "
            "simulating), the fraction of that stage done and eta_seconds"
        },
    )
    settings = ma.fields.Dict(metadata={"description": "The settings it runs with"})
    source = ma.fields.Dict(metadata={"description": "Where its rows came from"})
    enqueued_at = ma.fields.String(allow_none=True, metadata={"description": "When it was queued (UTC)"})
    started_at = ma.fields.String(allow_none=True, metadata={"description": "When a worker started it (UTC)"})
    ended_at = ma.fields.String(allow_none=True, metadata={"description": "When it ended (UTC)"})
    summary = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "Once finished: full_pool_accuracy, and per strategy auc, labels_to_90, "
            "labels_to_95, labels_to_98 (null when not reached), final_accuracy, final_macro_f1"
        },
    )
    files = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.String(), metadata={"description": "Result file URLs"}
    )
    error = ma.fields.String(allow_none=True, metadata={"description": "Why it failed, when it did"})


def _settings(args: dict, al: dict) -> Settings:
    check_vectorizer(args.get("vectorizer_name") or al["vectorizer_name"])
    return Settings(
        strategies=list(dict.fromkeys(args.get("strategies") or [al["query_strategy"]])),
        seed_size=args["seed_size"],
        loop=args["loop"],
        batch_size=args["batch_size"],
        budget=args["budget"],
        repeats=args["repeats"],
        test_fraction=args["test_fraction"],
        seed=args["seed"],
        vectorizer=args.get("vectorizer_name") or al["vectorizer_name"],
        classifier=args.get("classifier_name") or al["classifier_name"],
        params={
            k: al[k]
            for k in ("uncertainty_measure", "hybrid_weights", "hybrid_shares")
            if al.get(k) is not None
        },
    )


def _fetch(sim: str) -> Job:
    try:
        job = Job.fetch(sim, connection=backend().redis, serializer=JSONSerializer)
    except (NoSuchJobError, ValueError):
        job = None
    if job is None or job.meta.get("kind") != "simulation" or not _visible(job):
        raise NotFound(f"no simulation {sim!r} (results are kept for a week)")
    return job


def _visible(job: Job) -> bool:
    """A simulation belongs to the project whose key started it (the admin's: to the admin)."""
    owner = job.meta.get("owner")
    who = principal()
    return who.is_admin or (owner is not None and who.may_manage(owner))


@blp.route("")
class Simulations(MethodView):
    @blp.arguments(SimulationRequestSchema, example=examples_measures.SIMULATION_REQUEST)
    @blp.response(202, SimulationRefSchema, example=examples_measures.SIMULATION_REF)
    def post(self, args):
        """Start a simulation; follow it at the returned status URL."""
        b = backend()
        who = principal()
        if "source" in args:
            if not who.may_manage(args["source"]["project"]):
                raise NotFound(f"no project named {args['source']['project']!r}")
            project = load_project(args["source"]["project"])
            al = active_learning(project)
            payload: dict = {
                "train": simulation_job.project_rows(b.store, project["name"], args["source"]["schema"])
            }
            source = {"kind": "project", **args["source"]}
        else:
            al = AL_DEFAULTS
            payload = {"train": args["train"], "test": args.get("test")}
            source = {"kind": "rows"}
        train, test = simulation_job.datasets(payload)  # every row checked before queueing
        if test is None and len(train) < 10:
            raise InvalidInput("a simulation without test rows needs at least 10 labelled rows")
        settings = _settings(args, al)
        payload["settings"] = settings.__dict__
        source |= {"train_rows": len(train), "test_rows": len(test) if test is not None else None}
        sim = simulation_job.submit(b.redis, b.simulation_queue, payload, settings, source, owner=who.project)
        location = url_for("simulations.Simulation", sim=sim)
        return {"id": sim, "status_url": location}, {"Location": location}


@blp.route("/<sim>")
class Simulation(MethodView):
    @blp.response(200, SimulationSchema, example=examples_measures.SIMULATION)
    def get(self, sim):
        """A simulation's status, progress and, once finished, its summary and files."""
        job = _fetch(sim)
        status = job.get_status()
        name = status.value if status is not None else "unknown"
        finished = name == "finished"
        return {
            "id": job.id,
            "status": name,
            "progress": job.meta.get("progress"),
            "settings": job.meta.get("settings", {}),
            "source": job.meta.get("source", {}),
            "enqueued_at": _iso(job.enqueued_at),
            "started_at": _iso(job.started_at),
            "ended_at": _iso(job.ended_at),
            "summary": job.return_value() if finished else None,
            "files": {
                f: url_for("simulations.SimulationFile", sim=job.id, name=f) for f in simulation_job.FILES
            }
            if finished
            else {},
            "error": _error_line(job) if name == "failed" else None,
        }

    @blp.response(204)
    @answers_404(blp, "no simulation 'f3a9'")
    def delete(self, sim):
        """Stop a simulation if it runs, and forget it with its data and results."""
        b = backend()
        job = _fetch(sim)
        if job.get_status() == JobStatus.STARTED:
            try:
                send_stop_job_command(b.redis, job.id, serializer=JSONSerializer)
            except InvalidJobOperation:
                pass  # it ended meanwhile
        elif job.get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            job.cancel()
        job.delete(remove_from_queue=True)
        simulation_job.delete(b.redis, job.id)


@blp.route("/<sim>/<name>")
class SimulationFile(MethodView):
    @blp.response(200, content_type="application/octet-stream")
    @blp.alt_response(200, content_type="text/csv", description="curves.csv", success=True)
    @blp.alt_response(200, content_type="image/png", description="curves.png", success=True)
    @answers_404(blp, "no file 'curves.svg'; a simulation has ['curves.csv', 'curves.png', 'summary.json']")
    def get(self, sim, name):
        """A finished simulation's curves.csv, curves.png or summary.json."""
        if name not in simulation_job.FILES:
            raise NotFound(f"no file {name!r}; a simulation has {list(simulation_job.FILES)}")
        job = _fetch(sim)
        blob = simulation_job.result_file(backend().redis, job.id, name)
        if blob is None:
            status = job.get_status()
            raise NotFound(
                f"simulation {sim} has no {name} yet (status: {status.value if status else 'unknown'})"
            )
        return Response(blob, mimetype=simulation_job.FILES[name])


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
