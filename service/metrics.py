"""Learning curve and stopping signal of a schema."""

from __future__ import annotations

import io

import marshmallow as ma
from flask import Flask, Response
from flask.views import MethodView

from service import examples_measures
from service.bodies import Blueprint
from service.common import SchemaQuery, load_project, load_schema
from service.errors import answers_404
from service.extensions import api, backend
from service.quality import AgreementSchema, agreement_of
from workers.stopping import learning_curve, stopping

blp = Blueprint("metrics", __name__, url_prefix="/v1/projects", description="Learning curves and stopping")


def _interval(what: str) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Float(allow_none=True),
        allow_none=True,
        metadata={"description": f"95% interval of {what}: [low, high]"},
    )


class CurvePointSchema(ma.Schema):
    version = ma.fields.Integer(metadata={"description": "The model version"})
    labels = ma.fields.Integer(metadata={"description": "Labels the model was trained on"})
    accuracy = ma.fields.Float(allow_none=True, metadata={"description": "On the random evaluation sample"})
    accuracy_interval = _interval("accuracy (Wilson score)")
    macro_f1 = ma.fields.Float(
        allow_none=True, metadata={"description": "Macro-F1 on the labelled evaluation sample"}
    )
    macro_f1_interval = _interval("macro-F1 (percentile bootstrap over the evaluation items)")
    evaluation_size = ma.fields.Integer(
        metadata={"description": "Labelled evaluation items it was measured on"}
    )
    stop_kappa = ma.fields.Float(
        allow_none=True, metadata={"description": "Agreement with the previous version on the stop set"}
    )
    stop_kappa_interval = _interval("stop_kappa (bootstrap over the stop set)")
    equivalent_random_labels = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Labels random labelling would need for this accuracy (the gain)"},
    )
    equivalent_random_interval = ma.fields.List(
        ma.fields.Integer(allow_none=True),
        allow_none=True,
        metadata={"description": "Its 95% interval; null where beyond what the curve can tell"},
    )
    created_at = ma.fields.String(
        allow_none=True, metadata={"description": "When the version was trained (UTC)"}
    )
    classifier = ma.fields.String(
        allow_none=True, metadata={"description": "The kind of model (what auto chose, under auto)"}
    )
    train_seconds = ma.fields.Float(allow_none=True, metadata={"description": "Seconds training took"})


class GainSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "estimated, too_early or no_model"})
    verdict = ma.fields.String(
        metadata={
            "description": "saving, undecided, not_helping (active learning against random), or too_early"
        }
    )
    statement = ma.fields.String(metadata={"description": "The finding in one sentence"})
    model_version = ma.fields.Integer(
        metadata={
            "description": "The version it was estimated for: the newest, or the last before it "
            "(estimated again once the labels have grown by a tenth)"
        }
    )
    labels = ma.fields.Integer(
        allow_none=True, metadata={"description": "Labels that version trained on (N)"}
    )
    equivalent_random_labels = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "M: labels at which random labelling would be as accurate (null: beyond cap)"
        },
    )
    interval = ma.fields.List(
        ma.fields.Integer(allow_none=True), metadata={"description": "95% interval of M (null: beyond cap)"}
    )
    labels_saved = ma.fields.Integer(allow_none=True, metadata={"description": "M - N"})
    labels_saved_interval = ma.fields.List(
        ma.fields.Integer(allow_none=True), metadata={"description": "95% interval"}
    )
    accuracy = ma.fields.Float(metadata={"description": "That version's accuracy on the evaluation sample"})
    random_labels = ma.fields.Integer(metadata={"description": "Training labels the exploration share drew"})
    evaluation_size = ma.fields.Integer(metadata={"description": "Labelled evaluation items"})
    extrapolated = ma.fields.Boolean(
        metadata={
            "description": "Whether M lies beyond the uniform draws random labelling's curve was measured on"
        }
    )
    cap = ma.fields.Integer(metadata={"description": "How far the curve is read; beyond, M is null"})
    random_curve = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "Random labelling's measured curve: labels, accuracy"}
    )
    method = ma.fields.String(metadata={"description": "How it is estimated"})


class StopKappaSchema(ma.Schema):
    version = ma.fields.Integer()
    labels = ma.fields.Integer()
    kappa = ma.fields.Float(allow_none=True)
    interval = ma.fields.List(ma.fields.Float(), allow_none=True)


class StoppingSchema(ma.Schema):
    should_stop = ma.fields.Boolean(metadata={"description": "Whether more labels have stopped paying off"})
    reason = ma.fields.String(metadata={"description": "Why, with the figures"})
    criterion = ma.fields.String(metadata={"description": "The rule the signal follows"})
    threshold = ma.fields.Float(metadata={"description": "The kappa that counts as stable"})
    window = ma.fields.Integer(metadata={"description": "Stable versions in a row it needs"})
    kappas = ma.fields.List(
        ma.fields.Nested(StopKappaSchema),
        metadata={"description": "The last versions' kappa with its 95% bootstrap interval"},
    )
    certainty = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "Share of resamples of the stop set that give the same verdict "
            "(1: it would stand on another stop set; 0.5: a coin toss)"
        },
    )


class MetricsSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    curve = ma.fields.List(
        ma.fields.Nested(CurvePointSchema),
        metadata={"description": "One point per model version, oldest first"},
    )
    gain = ma.fields.Nested(GainSchema, metadata={"description": "The serving model's gain over random"})
    stopping = ma.fields.Nested(
        StoppingSchema, metadata={"description": "The stopping signal and its figures"}
    )
    should_stop = ma.fields.Boolean(
        metadata={"description": "Whether more labels have stopped paying off (stabilising predictions)"}
    )
    reason = ma.fields.String(metadata={"description": "Why should_stop is what it is"})
    agreement = ma.fields.Nested(
        AgreementSchema,
        allow_none=True,
        metadata={"description": "Agreement between annotators, as the last refresh found it"},
    )


def newest_gain(models: list[dict]) -> dict:
    """The newest version's gain over random, or the newest estimate before it: estimates
    are made as the labels grow (``GAIN_GROWTH``), not at every retrain."""
    for m in reversed(models):
        if m.get("gain"):
            return {**m["gain"], "model_version": m["version"]}
    if models:
        return {"status": "too_early", "verdict": "too_early", "statement": "Not estimated yet."}
    return {
        "status": "no_model",
        "verdict": "too_early",
        "statement": "No model yet: the gain over random is estimated as the labels grow.",
    }


def metrics_of(project: str, schema_name: str) -> dict:
    """The metrics document of a schema (``GET .../metrics``)."""
    proj = load_project(project)
    schema = load_schema(proj, schema_name)["name"]
    models = backend().store.list_models(project, schema)
    found = stopping(models)
    gain = newest_gain(models)
    return {
        "schema": schema,
        "curve": learning_curve(models),
        "gain": gain,
        "stopping": found,
        "should_stop": found["should_stop"],
        "reason": found["reason"],
        "agreement": agreement_of(project, schema),
    }


@blp.route("/<project>/metrics")
class Metrics(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(200, MetricsSchema, example=examples_measures.METRICS)
    def get(self, query, project):
        """Accuracy and macro-F1 on the random evaluation sample per model version with 95%
        intervals, the gain over random, and whether to stop."""
        return metrics_of(project, query["schema"])


@blp.route("/<project>/metrics.png")
class MetricsPlot(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(200, content_type="image/png")
    @answers_404(blp, "no project named 'reviews'")
    def get(self, query, project):
        """The learning curve as a PNG, with its 95% band and random labelling's curve."""
        m = metrics_of(project, query["schema"])
        title = f"{project}/{m['schema']}: " + ("stop" if m["should_stop"] else "keep labelling")
        return Response(curve_png(m, title), mimetype="image/png")


def curve_png(m: dict, title: str) -> bytes:
    """The learning curve of a metrics document: accuracy with its 95% band, random
    labelling's estimated curve, and the stop-set kappa."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    pts = [p for p in m["curve"] if p["accuracy"] is not None]
    xs = [p["labels"] for p in pts]
    ax.plot(xs, [p["accuracy"] for p in pts], marker="o", color="C0", label="accuracy (evaluation sample)")
    banded = [p for p in pts if p.get("accuracy_interval")]
    if banded:
        ax.fill_between(
            [p["labels"] for p in banded],
            [p["accuracy_interval"][0] for p in banded],
            [p["accuracy_interval"][1] for p in banded],
            color="C0",
            alpha=0.18,
            linewidth=0,
            label="95% interval (Wilson)",
        )
    gain = m.get("gain") or {}
    if gain.get("random_curve"):
        rc = gain["random_curve"]
        ax.plot(
            [p["labels"] for p in rc],
            [p["accuracy"] for p in rc],
            color="C1",
            marker=".",
            linestyle=":",
            label="random labelling (uniform draws)",
        )
    ax.set_xlabel("labels")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    kp = [p for p in m["curve"] if p["stop_kappa"] is not None]
    if kp:
        ax2 = ax.twinx()
        ax2.plot(
            [p["labels"] for p in kp],
            [p["stop_kappa"] for p in kp],
            color="grey",
            linestyle="--",
            label="kappa vs previous model",
        )
        ax2.set_ylabel("stop-set kappa")
        ax2.set_ylim(0, 1.02)  # the same scale as accuracy, so the grid serves both
        more, more_names = ax2.get_legend_handles_labels()
        handles, names = handles + more, names + more_names
    ax.legend(handles, names, loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
