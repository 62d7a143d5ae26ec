"""Learning curve and stopping signal of a schema."""

from __future__ import annotations

import io

import marshmallow as ma
from flask import Flask, Response
from flask.views import MethodView

from service import examples
from service.bodies import Blueprint
from service.common import SchemaQuery, load_project, load_schema
from service.extensions import api, backend
from workers.stopping import learning_curve, stopping_signal

blp = Blueprint("metrics", __name__, url_prefix="/v1/projects", description="Learning curves and stopping")


class CurvePointSchema(ma.Schema):
    version = ma.fields.Integer(metadata={"description": "The model version"})
    labels = ma.fields.Integer(metadata={"description": "Labels the model was trained on"})
    accuracy = ma.fields.Float(allow_none=True, metadata={"description": "On the random evaluation sample"})
    macro_f1 = ma.fields.Float(
        allow_none=True, metadata={"description": "Macro-F1 on the labelled evaluation sample"}
    )
    evaluation_size = ma.fields.Integer(
        metadata={"description": "Labelled evaluation items it was measured on"}
    )
    stop_kappa = ma.fields.Float(
        allow_none=True, metadata={"description": "Agreement with the previous version on the stop set"}
    )
    created_at = ma.fields.String(
        allow_none=True, metadata={"description": "When the version was trained (UTC)"}
    )


class MetricsSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    curve = ma.fields.List(
        ma.fields.Nested(CurvePointSchema),
        metadata={"description": "One point per model version, oldest first"},
    )
    should_stop = ma.fields.Boolean(
        metadata={"description": "Whether more labels have stopped paying off (stabilising predictions)"}
    )
    reason = ma.fields.String(metadata={"description": "Why should_stop is what it is"})


def _metrics(project: str, schema_name: str) -> dict:
    proj = load_project(project)
    schema = load_schema(proj, schema_name)["name"]
    models = backend().store.list_models(project, schema)
    stop, reason = stopping_signal(models)
    return {"schema": schema, "curve": learning_curve(models), "should_stop": stop, "reason": reason}


@blp.route("/<project>/metrics")
class Metrics(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(200, MetricsSchema, example=examples.METRICS)
    def get(self, query, project):
        """Accuracy on the random evaluation sample per model version, and whether to stop."""
        return _metrics(project, query["schema"])


@blp.route("/<project>/metrics.png")
class MetricsPlot(MethodView):
    @blp.arguments(SchemaQuery, location="query")
    @blp.response(200, content_type="image/png")
    def get(self, query, project):
        """The learning curve as a PNG."""
        m = _metrics(project, query["schema"])
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        pts = [p for p in m["curve"] if p["accuracy"] is not None]
        ax.plot([p["labels"] for p in pts], [p["accuracy"] for p in pts], marker="o", label="accuracy")
        ax.set_xlabel("labels")
        ax.set_ylabel("accuracy on the evaluation sample")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
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
            ax2.set_ylim(0, 1.05)
        ax.set_title(f"{project}/{m['schema']}: " + ("stop" if m["should_stop"] else "keep labelling"))
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return Response(buf.getvalue(), mimetype="image/png")


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
