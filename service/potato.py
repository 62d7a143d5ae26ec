"""Potato's outgoing webhooks: its annotators' choices become labels as they are saved.

A Potato 2.12 config names alrank as a webhook endpoint::

    webhooks:
      enabled: true
      endpoints:
        - url: <alrank>/potato/<project>/webhook
          secret: <the project's potato.webhook_secret>
          events: [annotation.created, annotation.updated]

Potato signs each delivery (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``); a delivery whose signature does not match the project's secret, or
whose timestamp is more than five minutes off, gets 401. Potato retries a delivery that
fails, so a label for an item alrank does not have yet (a 422) arrives again later.
"""

from __future__ import annotations

import json
import time

import marshmallow as ma
from flask import Flask, current_app, request
from flask.views import MethodView
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from service.bodies import Blueprint
from service.common import check_order_schema, load_project
from service.extensions import api, backend
from workers import potato_feed
from workers.access import backend_secret
from workers.exceptions import InvalidInput, NotFound
from workers.potato import fresh, signature_matches, webhook_labels
from workers.queueing import store_labels

blp = Blueprint(
    "potato",
    __name__,
    url_prefix="/potato/<project>",
    description="Potato's outgoing webhooks: annotations in, signed with the project's secret",
)

PURPOSE = "potato webhook"
LABEL_EVENTS = ("annotation.created", "annotation.updated")


def webhook_secret(project: str) -> str:
    nonce = backend().store.potato_nonce(project)
    return backend_secret(current_app.config.get("ADMIN_KEY"), project, nonce, PURPOSE)


def manager_view(project: str) -> dict:
    """What to put in the Potato config's ``webhooks.endpoints``, how the order reaches
    Potato, and how the last feed ended."""
    base = current_app.config.get("PUBLIC_URL") or request.url_root
    store = backend().store
    return {
        "webhook_url": f"{base.rstrip('/')}/potato/{project}/webhook",
        "webhook_secret": webhook_secret(project),
        "events": list(LABEL_EVENTS),
        "settings": potato_feed.settings(store, project),
        "feed": store.potato(project).get("feed"),
    }


def save_settings(project: dict, given: dict) -> None:
    """Change how the order reaches Potato, and feed the published ranking at once."""
    check_order_schema(project, given, "potato")
    store = backend().store
    current = store.potato(project["name"]).get("settings") or {}
    store.save_potato(project["name"], settings={**current, **given})
    if potato_feed.settings(store, project["name"])["data_directory"]:
        potato_feed.enqueue(store, backend().redis, project["name"], "Potato settings changed")


class DeliveryAnswer(ma.Schema):
    event = ma.fields.String(metadata={"description": "The event handled"})
    labels = ma.fields.Integer(metadata={"description": "Labels the delivery carried"})
    new = ma.fields.Integer(metadata={"description": "Labels new to their item and annotator"})
    skipped = ma.fields.List(ma.fields.String(), metadata={"description": "Choices left out, and why"})
    training_jobs = ma.fields.Dict(metadata={"description": "Per schema, the retrain job it triggered"})
    ignored = ma.fields.Boolean(metadata={"description": "An event alrank has no use for"})


def check_signature(project: str, body: bytes) -> None:
    headers = request.headers
    timestamp = headers.get("webhook-timestamp", "")
    if not fresh(timestamp, time.time()):
        raise _refuse("webhook-timestamp is missing or more than five minutes from now")
    if not signature_matches(
        webhook_secret(project),
        headers.get("webhook-id", ""),
        timestamp,
        body,
        headers.get("webhook-signature", ""),
    ):
        raise _refuse("the signature does not match this project's webhook secret")


def _refuse(why: str) -> Unauthorized:
    return Unauthorized(why, www_authenticate=[WWWAuthenticate("Standard-Webhooks", {"realm": "alrank"})])


@blp.route("/webhook")
class Webhook(MethodView):
    @blp.doc(
        requestBody={
            "required": True,
            "description": "A Potato webhook delivery: event, timestamp, data",
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {
                        "event": "annotation.created",
                        "timestamp": "2026-12-02T06:06:02.927414Z",
                        "data": {
                            "user_id": "ana",
                            "instance_id": "sms-00001",
                            "annotations": {"label": "true", "label:::ham": "true"},
                            "schema_name": None,
                        },
                    },
                }
            },
        }
    )
    @blp.response(200, DeliveryAnswer, example={"event": "annotation.created", "labels": 1, "new": 1})
    def post(self, project):
        """One signed delivery from Potato: an annotation's choices become labels (the
        annotator is Potato's user id); other events are acknowledged and ignored."""
        body = request.get_data()
        try:
            proj = load_project(project)
        except NotFound:
            raise _refuse("the signature does not match this project's webhook secret") from None
        if current_app.config["AUTH"]:
            check_signature(project, body)
        try:
            delivery = json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"the delivery is not JSON: {exc}") from exc
        event = delivery.get("event") if isinstance(delivery, dict) else None
        if event not in LABEL_EVENTS:
            return {"event": event, "ignored": True}
        data = delivery.get("data") or {}
        if not isinstance(data, dict) or not data.get("instance_id") or not data.get("user_id"):
            raise InvalidInput("an annotation delivery needs data.instance_id and data.user_id")
        labels, skipped = webhook_labels(proj, data)
        b = backend()
        new, jobs = store_labels(b.store, b.queue, proj, labels, "potato") if labels else (0, {})
        return {"event": event, "labels": len(labels), "new": new, "skipped": skipped, "training_jobs": jobs}


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
