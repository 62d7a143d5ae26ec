"""Labels: annotators' answers, upserted by (item, schema, annotator)."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from werkzeug.exceptions import Forbidden

from service import examples
from service.auth import principal, require_annotator
from service.bodies import Blueprint
from service.common import annotator_field, load_project, load_schema
from service.extensions import api, backend
from workers import defaults
from workers.exceptions import InvalidInput, NotFound
from workers.queueing import store_labels

blp = Blueprint("labels", __name__, url_prefix="/v1/projects", description="Annotators' labels")


class LabelValue(ma.fields.Field):
    """One label (a string), or a list of labels for a multi-label schema."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ma.ValidationError("a label is a string, or a list of strings for a multi-label schema")


class LabelSchema(ma.Schema):
    item = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=defaults.MAX_ID_CHARS),
        metadata={"description": "Id of the labelled item"},
    )
    schema = ma.fields.String(required=True, metadata={"description": "Name of the schema the label answers"})
    value = LabelValue(
        required=True,
        metadata={
            "description": "A label, or a list for multi-label",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
    )
    annotator = annotator_field(required=True)


class LabelsUploadSchema(ma.Schema):
    labels = ma.fields.List(
        ma.fields.Nested(LabelSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=defaults.MAX_LABELS_PER_REQUEST),
        metadata={"description": "Labels to store (at most 10,000 a request)"},
    )


class LabelsResultSchema(ma.Schema):
    received = ma.fields.Integer(metadata={"description": "Labels in the request"})
    new = ma.fields.Integer(metadata={"description": "Labels new to their item and annotator"})
    training_jobs = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Per schema, the retrain job it triggered"},
    )


class DeleteLabelQuery(ma.Schema):
    annotator = annotator_field("Only this annotator's label (default: all)")


def check_value(schema: dict, value, index: int) -> None:
    allowed = schema["labels"]
    if schema["multi_label"]:
        if not isinstance(value, list):
            raise InvalidInput(
                f"labels[{index}]: schema {schema['name']!r} is multi-label; send a list of labels"
            )
        bad = [v for v in value if v not in allowed]
        if len(set(value)) != len(value):
            raise InvalidInput(f"labels[{index}]: a label is listed twice in {value}")
    else:
        if not isinstance(value, str):
            raise InvalidInput(f"labels[{index}]: schema {schema['name']!r} takes one label, not a list")
        bad = [value] if value not in allowed else []
    if bad:
        raise InvalidInput(
            f"labels[{index}]: {bad[0]!r} is not a label of schema "
            f"{schema['name']!r}; its labels are {allowed}"
        )


@blp.route("/<project>/labels")
class Labels(MethodView):
    @blp.arguments(LabelsUploadSchema, example=examples.LABELS_UPLOAD)
    @blp.response(200, LabelsResultSchema, example=examples.LABELS_RESULT)
    def post(self, body, project):
        """Store labels in bulk; re-sending (item, schema, annotator) replaces the value."""
        for annotator in {label["annotator"] for label in body["labels"]}:
            require_annotator(annotator)
        proj = load_project(project)
        for i, label in enumerate(body["labels"]):
            check_value(load_schema(proj, label["schema"]), label["value"], i)
        b = backend()
        if (
            len({label["schema"] for label in body["labels"]}) > 1
        ):  # all or nothing across schemas (one schema checks atomically)
            b.store.check_items_exist(project, [lab["item"] for lab in body["labels"]])
        new_total, jobs = store_labels(b.store, b.queue, proj, body["labels"])
        return {"received": len(body["labels"]), "new": new_total, "training_jobs": jobs}


@blp.route("/<project>/labels/<schema>/<path:item>")
class Label(MethodView):
    @blp.arguments(DeleteLabelQuery, location="query")
    @blp.response(204)
    def delete(self, query, project, schema, item):
        """Delete an item's labels on a schema (or one annotator's); the item rejoins the pool.
        An annotator key deletes only its own: it must name the annotator."""
        if principal().role == "annotator":
            if not query.get("annotator"):
                raise Forbidden("an annotator key deletes only its own labels: name the annotator")
            require_annotator(query["annotator"])
        proj = load_project(project)
        load_schema(proj, schema)
        removed = backend().store.delete_label(project, schema, item, query.get("annotator"))
        if not removed:
            who = f" by {query['annotator']!r}" if query.get("annotator") else ""
            raise NotFound(f"item {item!r} has no label{who} on schema {schema!r}")


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
