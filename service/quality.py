"""Label quality: agreement between annotators and the labels the data contradicts."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask
from flask.views import MethodView

from service import examples_measures
from service.bodies import Blueprint
from service.common import load_project, load_schema
from service.extensions import api, backend
from workers import defaults
from workers.agreement import MIN_PAIR_ITEMS

blp = Blueprint("quality", __name__, url_prefix="/v1/projects", description="Label quality")


class PairSchema(ma.Schema):
    annotators = ma.fields.List(ma.fields.String(), metadata={"description": "The two annotators"})
    items = ma.fields.Integer(metadata={"description": "Items both labelled"})
    cohen_kappa = ma.fields.Float(allow_none=True, metadata={"description": "Cohen's kappa on them"})


class AnnotatorQualitySchema(ma.Schema):
    labels = ma.fields.Integer(metadata={"description": "Labels the annotator gave"})
    overlapped_items = ma.fields.Integer(metadata={"description": "Of them, items others labelled too"})
    agreement = ma.fields.Float(
        allow_none=True, metadata={"description": "Share matching the others' majority on those items"}
    )
    cohen_kappa = ma.fields.Float(
        allow_none=True, metadata={"description": "Cohen's kappa against the others' majority"}
    )
    reliability = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "Dawid-Skene's estimate of the annotator's accuracy, from the overlaps "
            "(null: no overlap yet)"
        },
    )


class AgreementSchema(ma.Schema):
    overlapped_items = ma.fields.Integer(metadata={"description": "Items two or more annotators labelled"})
    annotators = ma.fields.Integer(metadata={"description": "Annotators with a label"})
    fleiss_kappa = ma.fields.Float(allow_none=True, metadata={"description": "Fleiss' kappa over everyone"})
    krippendorff_alpha = ma.fields.Float(
        allow_none=True, metadata={"description": "Krippendorff's alpha (nominal) over everyone"}
    )
    pairs = ma.fields.List(
        ma.fields.Nested(PairSchema),
        metadata={"description": f"Pairs sharing at least {MIN_PAIR_ITEMS} items"},
    )
    per_annotator = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(AnnotatorQualitySchema),
        metadata={"description": "Per annotator"},
    )
    model_version = ma.fields.Integer(
        allow_none=True, metadata={"description": "The version whose refresh computed it"}
    )
    computed_at = ma.fields.String(allow_none=True, metadata={"description": "When (UTC)"})


class LabelIssuesQuery(ma.Schema):
    schema = ma.fields.String(
        required=True, metadata={"description": "Label schema name", "example": "sentiment"}
    )
    limit = ma.fields.Integer(
        load_default=100,
        validate=ma.validate.Range(1, defaults.LABEL_ISSUES_MAX),
        metadata={"description": "Issues to list, worst first"},
    )


class IssueSchema(ma.Schema):
    item = ma.fields.String(metadata={"description": "The item"})
    text = ma.fields.String(allow_none=True, metadata={"description": "Its text"})
    given = ma.fields.Raw(metadata={"description": "The label the model trains on (aggregated)"})
    suggested = ma.fields.Raw(metadata={"description": "What a model that did not see it predicts"})
    score = ma.fields.Float(
        metadata={"description": "1 - that model's probability of the label given (1: surely wrong)"}
    )
    annotators = ma.fields.Dict(metadata={"description": "Each annotator's label for the item"})
    queued_for_review = ma.fields.Boolean(
        metadata={
            "description": "Whether it waits for a second opinion: in the review queue, not answered since"
        }
    )


class LabelIssuesSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    status = ma.fields.String(
        metadata={
            "description": "found, no_model (not before the first model), too_few_labels (to "
            "cross-validate) or not_computed (no refresh since the project started)"
        }
    )
    method = ma.fields.String(metadata={"description": "How issues are found"})
    model_version = ma.fields.Integer(allow_none=True, metadata={"description": "The refresh's version"})
    computed_at = ma.fields.String(allow_none=True, metadata={"description": "When (UTC)"})
    checked = ma.fields.Integer(metadata={"description": "Labelled items checked"})
    flagged = ma.fields.Integer(metadata={"description": "Of them, flagged as issues"})
    queued_for_review = ma.fields.Integer(metadata={"description": "Issues waiting for a second opinion"})
    seconds = ma.fields.Float(
        allow_none=True, metadata={"description": "What assessing the labels took the worker"}
    )
    issues = ma.fields.List(ma.fields.Nested(IssueSchema), metadata={"description": "Worst first"})


def agreement_of(project: str, schema: str) -> dict | None:
    """The schema's agreement figures as its last refresh found them (None before one)."""
    doc = backend().store.quality(project, schema)
    if doc is None:
        return None
    return {**doc["agreement"], "model_version": doc["model_version"], "computed_at": doc["computed_at"]}


def label_issues_of(project: str, schema_name: str, limit: int) -> dict:
    proj = load_project(project)
    schema = load_schema(proj, schema_name)["name"]
    store = backend().store
    doc = store.quality(project, schema)
    if doc is None:
        return {"schema": schema, "status": "not_computed", "checked": 0, "flagged": 0, "issues": []}
    found = doc["label_issues"]
    waiting = store.queue_waiting(project, schema, "review")
    shown = found["issues"][:limit]
    docs = store.get_items(project, [i["item"] for i in shown]) if shown else []
    issues = [
        {**issue, "text": (d or {}).get("text"), "queued_for_review": issue["item"] in waiting}
        for issue, d in zip(shown, docs, strict=True)
    ]
    return {
        "schema": schema,
        "status": found["status"],
        "method": found["method"],
        "model_version": doc["model_version"],
        "computed_at": doc["computed_at"],
        "checked": found["checked"],
        "flagged": len(found["issues"]),
        "queued_for_review": len(waiting & {i["item"] for i in found["issues"]}),
        "seconds": doc.get("seconds"),
        "issues": issues,
    }


@blp.route("/<project>/label-issues")
class LabelIssues(MethodView):
    @blp.arguments(LabelIssuesQuery, location="query")
    @blp.response(200, LabelIssuesSchema, example=examples_measures.LABEL_ISSUES)
    def get(self, query, project):
        """Labels the rest of the data contradicts, worst first, with the label a model that
        did not see them suggests (confident learning, at each retrain)."""
        return label_issues_of(project, query["schema"], query["limit"])


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
