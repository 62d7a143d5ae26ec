"""Helpers shared by the resource modules."""

from __future__ import annotations

import base64
import binascii
import json

import marshmallow as ma

from service.extensions import backend
from workers import limits
from workers.exceptions import InvalidInput
from workers.settings import find_schema


def load_project(name: str) -> dict:
    return backend().store.get_project(name)


def load_schema(project: dict, name: str) -> dict:
    return find_schema(project, name)


class SchemaQuery(ma.Schema):
    schema = ma.fields.String(
        required=True, metadata={"description": "Label schema name", "example": "sentiment"}
    )


def check_order_schema(project: dict, given: dict, tool: str) -> None:
    """A connected tool's ``order_schema``, when given, names one of the project's schemas."""
    names = [s["name"] for s in project["schemas"]]
    if given.get("order_schema") is not None and given["order_schema"] not in names:
        raise InvalidInput(
            f"{tool}.order_schema {given['order_schema']!r} is not a schema; the schemas are {names}"
        )


def name_field(description: str) -> ma.fields.String:
    """A required project or schema name (it becomes part of keys and URLs)."""
    return ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(limits.NAME_PATTERN, error="use 1-64 letters, digits, '_', '.' or '-'"),
        metadata={"description": description},
    )


def annotator_field(
    description: str = "Annotator name", example: str | None = None, **kwargs
) -> ma.fields.String:
    metadata: dict = {"description": description}
    if example is not None:
        metadata["example"] = example
    return ma.fields.String(
        validate=ma.validate.Length(min=1, max=limits.MAX_ID_CHARS), metadata=metadata, **kwargs
    )


def trigger_refresh(project: str, schema: str, reason: str) -> str:
    """Ask a worker to retrain and re-rank; returns the job that will do it."""
    from workers.queueing import request_refresh

    b = backend()
    return request_refresh(b.store, b.queue, project, schema, reason)


def encode_cursor(*parts: str) -> str:
    """An opaque cursor holding where a listing stands."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, kind: str, size: int) -> list[str]:
    """The parts of a cursor made by ``encode_cursor(kind, ...)`` with ``size`` parts in all;
    a clear 400 for any other string."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        parts = None
    if not (isinstance(parts, list) and len(parts) == size and parts[0] == kind) or not all(
        isinstance(p, str) for p in parts
    ):
        raise InvalidInput("the cursor is not one this listing gave: pass next_cursor back as it came")
    return parts[1:]


def cursor_field() -> ma.fields.String:
    return ma.fields.String(
        load_default=None,
        metadata={"description": "next_cursor of the page before; omit for the first page"},
    )


def limit_field(default: int = 100) -> ma.fields.Integer:
    return ma.fields.Integer(
        load_default=default,
        validate=ma.validate.Range(1, limits.MAX_PAGE_SIZE),
        metadata={"description": f"Rows a page holds at most (1-{limits.MAX_PAGE_SIZE})"},
    )


def next_cursor_field() -> ma.fields.String:
    return ma.fields.String(
        allow_none=True,
        metadata={"description": "Pass as cursor to get the next page; null on the last page"},
    )
