"""Training jobs and model versions."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, url_for
from flask.views import MethodView
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service import examples
from service.auth import principal
from service.bodies import Blueprint
from service.common import SchemaQuery, load_project, load_schema, trigger_refresh
from service.extensions import api, backend
from workers.exceptions import NotFound

blp = Blueprint("jobs", __name__, url_prefix="/v1", description="Training jobs and model versions")


class JobRefSchema(ma.Schema):
    job = ma.fields.String(metadata={"description": "The job's id"})
    status_url = ma.fields.String(metadata={"description": "Where to follow the job"})


class JobSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The job's id"})
    status = ma.fields.String(
        metadata={
            "description": "queued, deferred (waits for a running job), "
            "started, finished, failed, stopped or canceled"
        }
    )
    project = ma.fields.String(allow_none=True, metadata={"description": "The project it ranks"})
    schema = ma.fields.String(allow_none=True, metadata={"description": "The schema it ranks"})
    reason = ma.fields.String(allow_none=True, metadata={"description": "What triggered it"})
    progress = ma.fields.Dict(
        allow_none=True, metadata={"description": "stage and fraction done, while it runs"}
    )
    enqueued_at = ma.fields.String(allow_none=True, metadata={"description": "When it was queued (UTC)"})
    started_at = ma.fields.String(allow_none=True, metadata={"description": "When a worker started it (UTC)"})
    ended_at = ma.fields.String(allow_none=True, metadata={"description": "When it ended (UTC)"})
    result = ma.fields.Dict(
        allow_none=True,
        metadata={"description": "What it did, once finished: status, ranking, model version, seconds"},
    )
    error = ma.fields.String(
        allow_none=True, metadata={"description": "Why a failed job failed (the ranking in service stays)"}
    )


class ModelSchema(ma.Schema):
    version = ma.fields.Integer(metadata={"description": "The version number, counting from 1 per schema"})
    created_at = ma.fields.String(metadata={"description": "When it was trained (UTC)"})
    training_size = ma.fields.Integer(
        metadata={"description": "Labels the fit measured on the evaluation sample was trained on"}
    )
    served_training_size = ma.fields.Integer(
        metadata={
            "description": "Labels the served model was trained on: the training labels and, with "
            "train_on_eval, the labelled evaluation items"
        }
    )
    train_seconds = ma.fields.Float(
        metadata={"description": "Seconds training took (with calibration and, under auto, the comparison)"}
    )
    classifier = ma.fields.String(
        metadata={"description": "The kind of model trained (what auto chose, under auto)"}
    )
    classes = ma.fields.List(ma.fields.String(), metadata={"description": "The labels it predicts"})
    class_counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Labels per class the served model learned from"},
    )
    temperature = ma.fields.Float(
        metadata={"description": "The calibration temperature applied to its logits"}
    )
    metrics = ma.fields.Dict(
        metadata={
            "description": "cv_accuracy: cross-validated on the training labels; model_choice, under "
            "auto: each candidate's cross-validated accuracy, the one chosen, its lead and seconds"
        }
    )
    evaluation = ma.fields.Dict(
        metadata={
            "description": "size, accuracy, macro_f1 on the labelled random evaluation sample, "
            "each with its 95% interval (accuracy_interval: Wilson; macro_f1_interval: bootstrap)"
        }
    )
    gain = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "The gain over random, where this version estimated it (as in GET .../metrics); "
            "absent where the labels had not grown by a tenth since the last estimate"
        },
    )
    gain_seconds = ma.fields.Float(
        metadata={
            "description": "Seconds the gain's estimate took, after the version's ranking was published"
        }
    )
    stop_kappa_interval = ma.fields.List(
        ma.fields.Float(), allow_none=True, metadata={"description": "95% bootstrap interval of stop_kappa"}
    )
    stop_kappa = ma.fields.Float(
        allow_none=True, metadata={"description": "Agreement with the previous version on the stop set"}
    )
    serving = ma.fields.Boolean(
        metadata={"description": "This version's ranking is the one GET .../next serves from"}
    )


class ModelListSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    models = ma.fields.List(
        ma.fields.Nested(ModelSchema), metadata={"description": "Its model versions, oldest first"}
    )


def _iso(dt) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def _error_line(job: Job) -> str | None:
    result = job.latest_result()
    text = getattr(result, "exc_string", None) if result is not None else None
    if not text:
        return None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


@blp.route("/projects/<project>/train")
class Train(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(202, JobRefSchema, example=examples.JOB_REF)
    def post(self, query, project):
        """Retrain and re-rank a schema now; joins a job already waiting, if any."""
        proj = load_project(project)
        schema = load_schema(proj, query["schema"])["name"]
        job_id = trigger_refresh(project, schema, "requested")
        location = url_for("jobs.JobStatus", job=job_id)
        return {"job": job_id, "status_url": location}, {"Location": location}


@blp.route("/jobs/<job>")
class JobStatus(MethodView):
    @blp.response(200, JobSchema, example=examples.JOB)
    def get(self, job):
        """A job's status, progress and result."""
        try:
            j = Job.fetch(job, connection=backend().redis, serializer=JSONSerializer)
        except (NoSuchJobError, ValueError):  # ValueError: not even a valid job id
            raise NotFound(f"no job {job!r} (finished jobs are kept for a week)") from None
        if j.meta.get("project") is None or not principal().may_see(j.meta["project"]):
            raise NotFound(f"no job {job!r} (finished jobs are kept for a week)")
        status = j.get_status()
        status_name = status.value if status is not None else "unknown"
        return {
            "id": j.id,
            "status": status_name,
            "project": j.meta.get("project"),
            "schema": j.meta.get("schema"),
            "reason": j.meta.get("reason"),
            "progress": j.meta.get("progress"),
            "enqueued_at": _iso(j.enqueued_at),
            "started_at": _iso(j.started_at),
            "ended_at": _iso(j.ended_at),
            "result": j.return_value() if status_name == "finished" else None,
            "error": (j.meta.get("error") or _error_line(j)) if status_name == "failed" else None,
        }


@blp.route("/projects/<project>/models")
class Models(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(200, ModelListSchema, example=examples.MODELS)
    def get(self, query, project):
        """The schema's model versions, oldest first; a version is listed once its ranking is
        published."""
        proj = load_project(project)
        schema = load_schema(proj, query["schema"])["name"]
        store = backend().store
        ranking = store.ranking_meta(project, schema) or {}
        models = store.list_models(project, schema)
        for m in models:
            m["serving"] = m["version"] == ranking.get("model_version")
        return {"schema": schema, "models": models}


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
