"""Labels: annotators' answers, upserted by (item, schema, annotator)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import marshmallow as ma
from flask import Flask, Response
from flask.views import MethodView
from werkzeug.exceptions import Forbidden

from service import examples
from service.auth import principal, require_annotator
from service.bodies import Blueprint
from service.common import (
    annotator_field,
    cursor_field,
    decode_cursor,
    encode_cursor,
    limit_field,
    load_project,
    load_schema,
    next_cursor_field,
)
from service.errors import answers_404
from service.extensions import api, backend
from workers import limits
from workers.exceptions import Conflict, InvalidInput, NotFound
from workers.queueing import store_labels
from workers.settings import check_value
from workers.store import LabelPosition, LabelRow, Store
from workers.store.keys import QUEUES as SECOND_OPINIONS

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
        validate=ma.validate.Length(min=1, max=limits.MAX_ID_CHARS),
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
    source = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(SECOND_OPINIONS),
        metadata={
            "description": "review or overlap when the item came as one in /next: a second opinion, "
            "which must come from an annotator who has not labelled the item (else 409)"
        },
    )


class LabelsUploadSchema(ma.Schema):
    labels = ma.fields.List(
        ma.fields.Nested(LabelSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_LABELS_PER_REQUEST),
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


class LabelsQuery(ma.Schema):
    schema = ma.fields.String(load_default=None, metadata={"description": "Only this schema's labels"})
    annotator = annotator_field("Only this annotator's labels", load_default=None)
    updated_since = ma.fields.AwareDateTime(
        load_default=None,
        default_timezone=dt.UTC,
        metadata={"description": "Only labels set at or after this time (ISO 8601; UTC if no zone)"},
    )


class LabelsPageQuery(LabelsQuery):
    cursor = cursor_field()
    limit = limit_field()


class LabelRowSchema(ma.Schema):
    item = ma.fields.String(metadata={"description": "The labelled item's id"})
    schema = ma.fields.String(metadata={"description": "The schema the label answers"})
    annotator = ma.fields.String(metadata={"description": "Who gave it"})
    value = LabelValue(
        metadata={
            "description": "The label, or a list for multi-label",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        }
    )
    updated_at = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "When it was last set (UTC, ms); null for labels stored before times were kept"
        },
    )


class LabelsPageSchema(ma.Schema):
    labels = ma.fields.List(
        ma.fields.Nested(LabelRowSchema),
        metadata={
            "description": "By schema, item id and annotator; a filtered page may hold fewer than limit"
        },
    )
    next_cursor = next_cursor_field()


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def row_out(row: LabelRow) -> dict:
    return {
        "item": row.item,
        "schema": row.schema,
        "annotator": row.annotator,
        "value": row.value,
        "updated_at": iso_ms(row.updated_ms),
    }


def label_filters(query: dict, project: dict) -> tuple[list[str], str | None, int | None]:
    """The schemas to list (all, in the project's order, or the one named), the annotator
    and the time (Unix ms) the query filters on."""
    schemas = [s["name"] for s in project["schemas"]]
    if query["schema"] is not None:
        schemas = [load_schema(project, query["schema"])["name"]]
    since = query["updated_since"]
    return schemas, query["annotator"], int(since.timestamp() * 1000) if since is not None else None


def export_lines(store: Store, project: dict, schemas: list[str], annotator, since_ms) -> Iterator[bytes]:
    """Each label as a JSON line, with its item's text for training elsewhere."""
    page: list[LabelRow] = []

    def flush() -> bytes:
        docs = store.get_items(project["name"], [r.item for r in page])
        out = []
        for row, doc in zip(page, docs, strict=True):
            line = {"text": doc.get("text") if doc else None, **row_out(row)}
            out.append(json.dumps(line, ensure_ascii=False) + "\n")
        page.clear()
        return "".join(out).encode("utf-8")

    for row in store.iter_labels(project["name"], schemas, annotator, since_ms):
        page.append(row)
        if len(page) >= 1000:
            yield flush()
    if page:
        yield flush()


@blp.route("/<project>/labels.jsonl")
class LabelsExport(MethodView):
    @blp.arguments(LabelsQuery, location="query")
    @blp.response(200, content_type="application/x-ndjson")
    @blp.doc(
        responses={
            "200": {
                "description": "One JSON object a line: item, text, schema, annotator, value, updated_at",
                "content": {"application/x-ndjson": {"example": examples.LABELS_JSONL}},
                "headers": {
                    "X-Total-Count": {
                        "description": "Labels in the project's listed schemas when the export began "
                        "(the rows, before the annotator and time filters)",
                        "schema": {"type": "integer"},
                    }
                },
            }
        }
    )
    def get(self, query, project):
        """Every label (filtered), streamed as JSON Lines with each item's text, for training
        elsewhere; in listing order, with the listing's guarantees."""
        proj = load_project(project)
        schemas, annotator, since_ms = label_filters(query, proj)
        store = backend().store
        total = store.label_count(project, schemas)
        return Response(
            export_lines(store, proj, schemas, annotator, since_ms),
            mimetype="application/x-ndjson",
            headers={"X-Total-Count": str(total)},
        )


class DeleteLabelQuery(ma.Schema):
    annotator = annotator_field("Only this annotator's label (default: all)")


def check_second_opinions(store: Store, project: str, labels: list[dict]) -> None:
    """A review or overlap answer comes from an annotator new to the item; otherwise the
    whole request is refused and nothing is stored."""
    for i, label in enumerate(labels):
        if label.get("source") is None:
            continue
        given = store.item_labels(project, label["schema"], label["item"])
        if label["annotator"] in given:
            raise Conflict(
                f"labels[{i}]: {label['annotator']!r} labelled {label['item']!r} already; a "
                f"{label['source']} answer must come from another annotator (nothing was stored)"
            )


@blp.route("/<project>/labels")
class Labels(MethodView):
    @blp.arguments(LabelsPageQuery, location="query")
    @blp.response(200, LabelsPageSchema, example=examples.LABELS_PAGE)
    def get(self, query, project):
        """Labels a page at a time, by schema, item and annotator, with when each was set;
        labels written or deleted meanwhile never make a page skip or repeat one that was
        there when the listing began."""
        proj = load_project(project)
        schemas, annotator, since_ms = label_filters(query, proj)
        after = None
        if query["cursor"]:
            schema, item, who = decode_cursor(query["cursor"], "labels", 4)
            if schema not in schemas:
                raise InvalidInput("the cursor belongs to a listing of another schema")
            after = LabelPosition(schema, item, who)
        rows, last = backend().store.label_page(project, schemas, after, query["limit"], annotator, since_ms)
        following = encode_cursor("labels", last.schema, last.item, last.annotator) if last else None
        return {"labels": [row_out(r) for r in rows], "next_cursor": following}

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
        check_second_opinions(b.store, project, body["labels"])
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
    @answers_404(blp, "no label of item 'r9' in schema 'sentiment'")
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
