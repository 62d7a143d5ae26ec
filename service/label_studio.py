"""Label Studio's ML-backend protocol, one backend URL per project.

The URL is ``<alrank>/ls/<project>/<secret>``; Label Studio appends ``/health``,
``/setup``, ``/versions``, ``/predict`` and ``/webhook``. The secret in the URL is the
credential: Label Studio sends no credentials on annotation webhooks, so a key in a header
could not protect them. The secret is derived from the admin key and a per-project nonce;
``DELETE /v1/projects/{project}/label-studio`` draws a new nonce, and the old URL stops
working at once. Basic auth in Label Studio's model settings is not needed (and not
checked).

Every call answers at once: reading Label Studio's tasks and annotations and writing the
order back are jobs on the ``alrank-sync`` queue (``workers.label_studio.sync``).
"""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, current_app, request
from flask.views import MethodView

from service import examples_tools
from service.auth import principal
from service.bodies import Blueprint
from service.common import check_order_schema, load_project, trigger_refresh
from service.extensions import api, backend
from service.predictions import fill_past_head
from workers import limits
from workers.access import backend_secret
from workers.exceptions import InvalidInput
from workers.label_studio.annotations import (
    adopt_label_config,
    apply_annotations,
    ensure_items,
    forget_annotations,
)
from workers.label_studio.config import LabelConfig, parse_label_config, prediction_result
from workers.label_studio.sync import (
    enqueue,
    order_schema,
    order_score,
    settings,
    version_name,
)

blp = Blueprint(
    "label_studio",
    __name__,
    url_prefix="/ls/<project>/<secret>",
    description="Label Studio's ML-backend protocol: paste the project's backend URL into Label Studio",
)

RESYNC_SECONDS = 300
"""Label Studio calls /setup often; past this long since the last task sync, one more runs."""

NO_RANKING = "alrank-no-ranking"


class Passthrough(ma.Schema):
    """A Label Studio body: the fields alrank reads are checked, the rest pass through."""

    class Meta:
        unknown = ma.INCLUDE


class SetupSchema(Passthrough):
    schema = ma.fields.String(required=True, metadata={"description": "The project's label config (XML)"})
    project = ma.fields.String(
        load_default="", metadata={"description": "Label Studio's project id, then a dot and a timestamp"}
    )
    hostname = ma.fields.String(
        load_default="", metadata={"description": "Label Studio's URL, for reading its API"}
    )
    access_token = ma.fields.String(
        load_default="", metadata={"description": "The connecting user's API token"}
    )


class PredictSchema(Passthrough):
    tasks = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        validate=ma.validate.Length(max=limits.MAX_ITEMS_PER_REQUEST),
        metadata={"description": "Tasks (id, data, ...) to predict, in order"},
    )
    label_config = ma.fields.String(load_default=None, metadata={"description": "The label config"})


class WebhookSchema(Passthrough):
    action = ma.fields.String(
        required=True,
        metadata={
            "description": "ANNOTATION_CREATED, ANNOTATIONS_CREATED, ANNOTATION_UPDATED, "
            "ANNOTATIONS_DELETED, START_TRAINING, PROJECT_UPDATED, TASKS_CREATED, TASKS_DELETED; "
            "others are acknowledged and ignored"
        },
    )


class HealthAnswer(ma.Schema):
    status = ma.fields.String(metadata={"description": "UP"})
    model_class = ma.fields.String(metadata={"description": "alrank"})


class VersionAnswer(ma.Schema):
    model_version = ma.fields.String(
        metadata={"description": "The Label Studio model version of the published ranking"}
    )


class VersionsAnswer(ma.Schema):
    versions = ma.fields.List(ma.fields.String(), metadata={"description": "The version in service"})


class PredictAnswer(ma.Schema):
    results = ma.fields.List(
        ma.fields.Dict(),
        metadata={
            "description": "One per task, in order: result (the predicted choices, each with the "
            "model's confidence as score), score (the task's rank) and model_version"
        },
    )
    model_version = ma.fields.String(metadata={"description": "The version the results come from"})


class WebhookAnswer(ma.Schema):
    action = ma.fields.String(metadata={"description": "The event handled"})
    labels = ma.fields.Integer(metadata={"description": "Labels the annotations gave"})
    new = ma.fields.Integer(metadata={"description": "Labels new to their item and annotator"})
    removed = ma.fields.Integer(metadata={"description": "Labels removed"})
    training_jobs = ma.fields.Dict(metadata={"description": "Per schema, the retrain job it triggered"})
    job = ma.fields.String(
        allow_none=True, metadata={"description": "The sync job queued (null: one was already waiting)"}
    )
    ignored = ma.fields.Boolean(metadata={"description": "An event alrank has no use for"})


def _check_task(task: dict) -> None:
    if not isinstance(task.get("id"), int) or not isinstance(task.get("data") or {}, dict):
        raise InvalidInput("every task needs an integer id and a data object")


def backend_url(project: str) -> str:
    """The URL to paste into Label Studio's model settings."""
    nonce = backend().store.label_studio_nonce(project)
    base = current_app.config.get("PUBLIC_URL") or request.url_root
    secret = backend_secret(current_app.config.get("ADMIN_KEY"), project, nonce)
    return f"{base.rstrip('/')}/ls/{project}/{secret}"


def connection_view(project: str) -> dict:
    """The connection as ``GET /v1/projects/{project}`` shows it to a manager."""
    link = backend().store.label_studio(project)
    return {
        "backend_url": backend_url(project),
        "connected": bool(link.get("project")),
        "url": link.get("url"),
        "project": int(link["project"]) if link.get("project") else None,
        "text_field": (link.get("config") or {}).get("text_field"),
        "order_schema": order_schema(link),
        "settings": settings(link),
        "tasks": link.get("tasks"),
        "order": link.get("order"),
        "annotations": link.get("annotations"),
    }


def current_config(link: dict, fallback_xml: str | None) -> LabelConfig:
    if link.get("config"):
        return LabelConfig.from_json(link["config"])
    if fallback_xml:
        return parse_label_config(fallback_xml)
    raise InvalidInput("Label Studio has not sent this project's label config yet (it does at /setup)")


def current_version(project: str, link: dict) -> str:
    schema = order_schema(link)
    meta = backend().store.ranking_meta(project, schema) if schema else None
    return version_name(schema, meta) if schema and meta else NO_RANKING


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthAnswer, example={"status": "UP", "model_class": "alrank"})
    def get(self, project, secret):
        """Label Studio's connection check."""
        load_project(project)
        return {"status": "UP", "model_class": "alrank"}


@blp.route("/setup")
class Setup(MethodView):
    @blp.arguments(SetupSchema, example=examples_tools.LS_SETUP)
    @blp.response(200, VersionAnswer, example={"model_version": "alrank-label-v3-r7"})
    def post(self, body, project, secret):
        """Label Studio sends its label config, URL and token: the config's Choices become
        schemas, and a worker reads the project's tasks as items."""
        b = backend()
        proj = load_project(project)
        config = parse_label_config(body["schema"])
        adopt(proj, config)
        link = b.store.label_studio(project)
        ls_project = body["project"].split(".", 1)[0]
        fields = {"config": config.to_json()}
        if ls_project.isdigit():
            fields["project"] = ls_project
        if body["hostname"]:
            fields["url"] = body["hostname"]
        if body["access_token"]:
            fields["token"] = body["access_token"]
        changed = any(link.get(k) != v for k, v in fields.items())
        b.store.save_label_studio(project, **fields)
        last = (link.get("tasks") or {}).get("at")
        if changed or last is None or _age_seconds(last) > RESYNC_SECONDS:
            enqueue(b.store, b.redis, project, "sync_tasks", "Label Studio setup")
            enqueue(b.store, b.redis, project, "push_order", "Label Studio setup")
        return {"model_version": current_version(project, {**link, **fields})}


def _age_seconds(iso: str) -> float:
    from datetime import UTC, datetime

    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()


@blp.route("/versions")
class Versions(MethodView):
    @blp.response(200, VersionsAnswer, example={"versions": ["alrank-label-v3-r7"]})
    def get(self, project, secret):
        """The model version Label Studio's queue is ordered by."""
        load_project(project)
        link = backend().store.label_studio(project)
        return {"versions": [current_version(project, link)]}


@blp.route("/predict")
class Predict(MethodView):
    @blp.arguments(PredictSchema, example=examples_tools.LS_PREDICT)
    @blp.response(200, PredictAnswer, example=examples_tools.LS_PREDICTIONS)
    def post(self, body, project, secret):
        """One result per task, in order, from the published ranking (never trains): each
        schema's predicted choice with the model's confidence, and ``score`` = the task's
        rank. Tasks alrank does not know yet join the pool."""
        b = backend()
        proj = load_project(project)
        link = b.store.label_studio(project)
        config = current_config(link, body["label_config"])
        for task in body["tasks"]:
            _check_task(task)
        if ensure_items(b.store, proj, config, body["tasks"]):
            for schema in proj["schemas"]:
                trigger_refresh(project, schema["name"], "Label Studio predicted new tasks")
        ids = [str(t["id"]) for t in body["tasks"]]
        first = order_schema(link) or config.controls[0].name
        ranked = {c.name: b.store.ranking_entries(project, c.name, ids) for c in config.controls}
        for name, (schema_meta, entries) in ranked.items():
            fill_past_head(project, name, ids, schema_meta, entries)
        meta = ranked[first][0]
        version = version_name(first, meta) if meta else NO_RANKING
        size = (meta or {}).get("ranked", 0)
        results = []
        for k in range(len(ids)):
            predicted = {
                s: (entry.label, entry.confidence)
                for s, (_, entries) in ranked.items()
                if (entry := entries[k]) is not None
            }
            entry = ranked[first][1][k]
            results.append(
                {
                    "result": prediction_result(config, predicted),
                    "score": order_score(entry.rank, size) if entry is not None else 1.0,
                    "model_version": version,
                }
            )
        return {"results": results, "model_version": version}


@blp.route("/webhook")
class Webhook(MethodView):
    @blp.arguments(WebhookSchema, example=examples_tools.LS_WEBHOOK)
    @blp.response(200, WebhookAnswer, example={"action": "ANNOTATION_CREATED", "labels": 1, "new": 1})
    def post(self, body, project, secret):
        """Label Studio's events: annotations become labels (deleted ones are removed),
        START_TRAINING reads every annotation and retrains, new tasks join the pool."""
        b = backend()
        proj = load_project(project)
        link = b.store.label_studio(project)
        action = body["action"]
        answer: dict = {"action": action}
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"):
            config = current_config(link, (body.get("project") or {}).get("label_config"))
            annotations = _listed(body.get("annotation"))
            tasks = [t for t in _listed(body.get("task")) if isinstance(t, dict)]
            for task in tasks:
                _check_task(task)
            for a in annotations:
                if not isinstance(a.get("id"), int) or not isinstance(a.get("task"), int):
                    raise InvalidInput("every annotation needs an integer id and task")
            ensure_items(b.store, proj, config, tasks)
            answer.update(apply_annotations(b.store, b.queue, proj, config, annotations))
        elif action == "ANNOTATIONS_DELETED":
            ids = [str(a.get("id")) for a in _listed(body.get("annotations")) if isinstance(a, dict)]
            answer["removed"] = forget_annotations(b.store, b.queue, project, ids)
        elif action == "START_TRAINING":
            answer["job"] = enqueue(
                b.store, b.redis, project, "sync_annotations", "Label Studio asked to train"
            )
        elif action == "PROJECT_UPDATED":
            xml = (body.get("project") or {}).get("label_config")
            if xml:
                config = parse_label_config(xml)
                adopt(proj, config)
                b.store.save_label_studio(project, config=config.to_json())
        elif action in ("TASKS_CREATED", "TASKS_DELETED"):
            answer["job"] = enqueue(b.store, b.redis, project, "sync_tasks", f"Label Studio {action}")
        else:
            answer["ignored"] = True
        return answer


def adopt(project: dict, config: LabelConfig) -> None:
    """Give the project the config's schemas; a schema new or changed is ranked at once."""
    saved = adopt_label_config(backend().store, project, config)
    if saved is not project:
        before = {s["name"]: s for s in project["schemas"]}
        for schema in saved["schemas"]:
            if before.get(schema["name"]) != schema:
                trigger_refresh(project["name"], schema["name"], "Label Studio's label config changed")


def _listed(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def manager_view(project: str) -> dict | None:
    """The connection for ``GET /v1/projects/{project}``: managers and the admin only."""
    if principal().role == "annotator":
        return None
    return connection_view(project)


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)


def save_settings(project: dict, given: dict) -> None:
    """Change how the order reaches Label Studio, and push it again under the new settings."""
    check_order_schema(project, given, "label_studio")
    store = backend().store
    link = store.label_studio(project["name"])
    store.save_label_studio(project["name"], settings={**(link.get("settings") or {}), **given})
    if link.get("project"):
        enqueue(store, backend().redis, project["name"], "push_order", "Label Studio settings changed")
