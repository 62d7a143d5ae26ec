"""A project's API keys: created with a name and a role, listed (never their secret),
rotated and revoked. A key's secret is shown once, in the answer that creates or rotates it."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, current_app
from flask.views import MethodView

from service import examples
from service.bodies import Blueprint
from service.common import annotator_field, load_project
from service.errors import answers_404
from service.extensions import api, backend
from workers.access import ROLES, digest, hashing_key, new_token
from workers.exceptions import InvalidInput

blp = Blueprint("keys", __name__, url_prefix="/v1/projects", description="A project's API keys")


class KeyCreateSchema(ma.Schema):
    name = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "What the key is for, e.g. 'label studio' or 'ana's laptop'"},
    )
    role = ma.fields.String(
        load_default="manager",
        validate=ma.validate.OneOf(ROLES),
        metadata={"description": "manager (everything on the project) or annotator"},
    )
    rate_limit_per_minute = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(1, 1_000_000),
        metadata={"description": "Requests the key may make a minute (429 past it); null: no limit"},
    )
    annotators = ma.fields.List(
        annotator_field(),
        load_default=list,
        validate=ma.validate.Length(max=1000),
        metadata={"description": "Annotator names an annotator key may act as (at least one)"},
    )


class KeySchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The key's id (the part after alr_ in the key)"})
    name = ma.fields.String(metadata={"description": "What the key is for"})
    role = ma.fields.String(metadata={"description": "manager or annotator"})
    annotators = ma.fields.List(
        ma.fields.String(), metadata={"description": "Who an annotator key may act as"}
    )
    rate_limit_per_minute = ma.fields.Integer(
        allow_none=True, metadata={"description": "Requests the key may make a minute; null: no limit"}
    )
    created_at = ma.fields.String(
        metadata={"description": "When the key (or its last rotation) was made (UTC)"}
    )


class NewKeySchema(KeySchema):
    key = ma.fields.String(metadata={"description": "The key itself: shown this once, store it now"})


class KeyListSchema(ma.Schema):
    keys = ma.fields.List(ma.fields.Nested(KeySchema), metadata={"description": "The project's keys"})


def issue_key(
    project: str,
    name: str,
    role: str,
    annotators: list[str],
    key_id: str | None = None,
    per_minute: int | None = None,
) -> dict:
    """Make a key (or a new secret for key ``key_id``); returns its record with the key."""
    if role == "annotator" and not annotators:
        raise InvalidInput("an annotator key needs the annotator names it may act as ('annotators')")
    admin_key = current_app.config.get("ADMIN_KEY")
    if not admin_key:
        raise InvalidInput("API keys need the service's admin key (ALRANK_ADMIN_KEY) to be set")
    token, new_id, secret = new_token()
    record = {
        "name": name,
        "role": role,
        "annotators": annotators if role == "annotator" else [],
        "rate_limit_per_minute": per_minute,
        "digest": digest(hashing_key(admin_key), secret),
    }
    saved = backend().store.save_key(project, key_id or new_id, record)
    if key_id:  # a rotation: the token names the kept id
        token = f"alr_{key_id}_{secret}"
    return {**public(saved), "key": token}


def public(record: dict) -> dict:
    """A key's record without its hashed secret."""
    return {k: v for k, v in record.items() if k not in ("digest", "project")}


@blp.route("/<project>/keys")
class Keys(MethodView):
    @blp.arguments(KeyCreateSchema, example=examples.KEY_CREATE)
    @blp.response(201, NewKeySchema, example=examples.NEW_KEY)
    def post(self, body, project):
        """Create an API key for the project; its secret is in this answer only."""
        load_project(project)
        return issue_key(
            project, body["name"], body["role"], body["annotators"], per_minute=body["rate_limit_per_minute"]
        )

    @blp.response(200, KeyListSchema, example=examples.KEY_LIST)
    def get(self, project):
        """The project's API keys, without their secrets."""
        load_project(project)
        return {"keys": [public(r) for r in backend().store.list_keys(project)]}


@blp.route("/<project>/keys/<key_id>/rotate")
class Rotate(MethodView):
    @blp.response(200, NewKeySchema, example=examples.NEW_KEY)
    def post(self, project, key_id):
        """A new secret for the key; the old one stops working at once."""
        record = backend().store.project_key(project, key_id)
        return issue_key(
            project,
            record["name"],
            record["role"],
            record["annotators"],
            key_id=key_id,
            per_minute=record.get("rate_limit_per_minute"),
        )


@blp.route("/<project>/keys/<key_id>")
class Key(MethodView):
    @blp.response(204)
    @answers_404(blp, "no key 'k7' in project 'reviews'")
    def delete(self, project, key_id):
        """Revoke the key: it stops working at once."""
        backend().store.revoke_key(project, key_id)


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
