"""Items: the pool, uploaded in bulk and upserted by id."""

from __future__ import annotations

import marshmallow as ma
import numpy as np
from flask import Flask
from flask.views import MethodView

from service import examples
from service.bodies import Blueprint, depth_of
from service.common import (
    cursor_field,
    decode_cursor,
    encode_cursor,
    limit_field,
    load_project,
    next_cursor_field,
    trigger_refresh,
)
from service.errors import answers_404
from service.extensions import api, backend
from workers import limits
from workers.exceptions import InvalidInput, NotFound

blp = Blueprint("items", __name__, url_prefix="/v1/projects", description="The pool of items")


def _shallow_enough(metadata: dict) -> None:
    depth = depth_of(metadata)
    if depth > limits.MAX_METADATA_DEPTH:
        raise ma.ValidationError(
            f"metadata nests {depth} levels deep; at most {limits.MAX_METADATA_DEPTH} are allowed"
        )


class TextOrVectorSchema(ma.Schema):
    """An item's content: its text, its vector, or both."""

    text = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=limits.MAX_TEXT_CHARS),
        metadata={"description": "The text annotators read and the text features are computed from"},
    )
    vector = ma.fields.List(
        ma.fields.Float(
            allow_nan=False,
            validate=ma.validate.Range(
                -limits.MAX_VECTOR_VALUE,
                limits.MAX_VECTOR_VALUE,
                error="vector values are stored as float32: keep them within ±3.4e38",
            ),
        ),
        allow_none=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_VECTOR_DIM),
        metadata={
            "description": "Your own feature vector, beside the text features (every item the same length)"
        },
    )

    @ma.validates_schema
    def text_or_vector(self, data, **kwargs):
        if data.get("text") is None and data.get("vector") is None:
            raise ma.ValidationError("an item needs a text, a vector, or both", "_item")


class ItemSchema(TextOrVectorSchema):
    id = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_ID_CHARS),
        metadata={"description": "The item's id in your tool; re-sending an id replaces the item"},
    )
    metadata = ma.fields.Dict(
        load_default=dict,
        validate=_shallow_enough,
        metadata={
            "description": "Free metadata, returned as given (nesting at most "
            f"{limits.MAX_METADATA_DEPTH} levels)"
        },
    )


class ItemsUploadSchema(ma.Schema):
    items = ma.fields.List(
        ma.fields.Nested(ItemSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_ITEMS_PER_REQUEST),
        metadata={"description": "Items to insert or replace (at most 10,000 a request)"},
    )

    def load(self, data, *args, **kwargs):
        """What marshmallow's load gives, checked in plain Python where every item is
        plainly valid; otherwise marshmallow's own load, whose errors say what is wrong.
        Marshmallow spends about 40 ms on a thousand items, most of an upload's time; the
        plain check takes a tenth of that (``tests/test_bodies.py`` holds the two equal)."""
        if not args and kwargs.get("unknown") in (None, ma.RAISE) and not kwargs.get("partial"):
            loaded = plain_upload(data)
            if loaded is not None:
                return loaded
        return super().load(data, *args, **kwargs)


ITEM_KEYS = frozenset({"id", "text", "vector", "metadata"})


def plain_upload(data) -> dict | None:
    """``ItemsUploadSchema().load(data)`` when every rule holds at first sight; None when
    any item needs a closer look (then marshmallow decides, and explains)."""
    if not isinstance(data, dict) or data.keys() != {"items"}:
        return None
    items = data["items"]
    if type(items) is not list or not 1 <= len(items) <= limits.MAX_ITEMS_PER_REQUEST:
        return None
    out = []
    for item in items:
        loaded = plain_item(item)
        if loaded is None:
            return None
        out.append(loaded)
    return {"items": out}


def plain_item(item) -> dict | None:
    if type(item) is not dict or not item.keys() <= ITEM_KEYS:
        return None
    item_id, text, vector = item.get("id"), item.get("text"), item.get("vector")
    if type(item_id) is not str or not 1 <= len(item_id) <= limits.MAX_ID_CHARS:
        return None
    if text is None and vector is None:
        return None
    if text is not None and (type(text) is not str or len(text) > limits.MAX_TEXT_CHARS):
        return None
    out = dict(item)
    if vector is not None:
        if type(vector) is not list or not 1 <= len(vector) <= limits.MAX_VECTOR_DIM:
            return None
        limit = limits.MAX_VECTOR_VALUE
        if any(type(v) not in (int, float) or not -limit <= v <= limit for v in vector):
            return None
        out["vector"] = [float(v) for v in vector]
    metadata = item.get("metadata", {})
    if type(metadata) is not dict or depth_of(metadata) > limits.MAX_METADATA_DEPTH:
        return None
    out["metadata"] = metadata
    return out


class ItemsUploadResultSchema(ma.Schema):
    created = ma.fields.Integer(metadata={"description": "Items new to the pool"})
    updated = ma.fields.Integer(metadata={"description": "Items that replaced one with the same id"})
    pool_size = ma.fields.Integer(metadata={"description": "Items in the pool after the upload"})


class ItemOutSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The item's id"})
    text = ma.fields.String(allow_none=True, metadata={"description": "The item's text"})
    metadata = ma.fields.Dict(metadata={"description": "The item's metadata, as uploaded"})
    labels = ma.fields.Dict(metadata={"description": "Per schema, each annotator's label"})


class ItemsQuery(ma.Schema):
    cursor = cursor_field()
    limit = limit_field()
    vectors = ma.fields.Boolean(
        load_default=False, metadata={"description": "Include each item's vector (as numbers)"}
    )


class ListedItemSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The item's id"})
    text = ma.fields.String(allow_none=True, metadata={"description": "The item's text"})
    metadata = ma.fields.Dict(metadata={"description": "The item's metadata, as uploaded"})
    vector = ma.fields.List(
        ma.fields.Float(),
        allow_none=True,
        metadata={"description": "Its vector (float32 values), when asked for and it has one"},
    )


class ItemsPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ListedItemSchema), metadata={"description": "In id order"})
    next_cursor = next_cursor_field()


def check_vectors(project: dict, items: list[dict]) -> dict:
    """All vectors share the project's length; the first upload fixes it when unset."""
    dims = {len(i["vector"]) for i in items if i.get("vector") is not None}
    expected = project.get("vector_dim")
    if expected is None and len(dims) > 1:
        raise InvalidInput(f"vectors in one upload must have one length; got lengths {sorted(dims)}")
    if expected is not None:
        bad = {
            i["id"]: len(i["vector"])
            for i in items
            if i.get("vector") is not None and len(i["vector"]) != expected
        }
        if bad:
            first = next(iter(bad.items()))
            raise InvalidInput(
                f"vectors in project {project['name']!r} have length {expected}; item "
                f"{first[0]!r} has {first[1]} ({len(bad)} item(s) refused)",
                {"wrong_length": bad},
            )
    elif dims:
        project = backend().store.save_project({**project, "vector_dim": dims.pop()})
    return project


@blp.route("/<project>/items")
class Items(MethodView):
    @blp.arguments(ItemsQuery, location="query")
    @blp.response(200, ItemsPageSchema, example=examples.ITEMS_PAGE)
    def get(self, query, project):
        """The pool, a page at a time in id order; items added or deleted meanwhile never
        make a page skip or repeat an item that was there when the listing began."""
        load_project(project)
        after = decode_cursor(query["cursor"], "items", 2)[0] if query["cursor"] else None
        rows, last = backend().store.item_page(project, after, query["limit"], query["vectors"])
        items = []
        for item_id, doc, vec in rows:
            listed = {"id": item_id, "text": doc.get("text"), "metadata": doc.get("metadata", {})}
            if query["vectors"]:
                listed["vector"] = np.frombuffer(vec, dtype=np.float32).tolist() if vec is not None else None
            items.append(listed)
        return {"items": items, "next_cursor": encode_cursor("items", last) if last is not None else None}

    @blp.arguments(ItemsUploadSchema, example=examples.ITEMS_UPLOAD)
    @blp.response(200, ItemsUploadResultSchema, example=examples.ITEMS_UPLOAD_RESULT)
    def post(self, body, project):
        """Insert or replace items by id (thousands per request)."""
        proj = load_project(project)
        ids = [i["id"] for i in body["items"]]
        if len(set(ids)) != len(ids):
            seen, dup = set(), []
            for i in ids:
                if i in seen:
                    dup.append(i)
                seen.add(i)
            raise InvalidInput(f"item ids repeat within the upload: {dup[:10]}")
        proj = check_vectors(proj, body["items"])
        store = backend().store
        result = store.upsert_items(proj, body["items"])
        for schema in proj["schemas"]:
            trigger_refresh(project, schema["name"], "items uploaded")
        return {**result, "pool_size": store.item_count(project)}


@blp.route("/<project>/items/<path:item>")
class Item(MethodView):
    @blp.response(200, ItemOutSchema, example=examples.ITEM)
    def get(self, project, item):
        """One item with its labels."""
        proj = load_project(project)
        store = backend().store
        (doc,) = store.get_items(project, [item])
        if doc is None:
            raise NotFound(f"no item {item!r} in project {project!r}")
        labels = {s["name"]: store.item_labels(project, s["name"], item) for s in proj["schemas"]}
        return {"id": item, **doc, "labels": labels}

    @blp.response(204)
    @answers_404(blp, "no item 'r9' in project 'reviews'")
    def delete(self, project, item):
        """Delete an item and its labels; it leaves every ranking at once."""
        backend().store.delete_item(load_project(project), item)


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
