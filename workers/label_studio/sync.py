"""Keeping a project and its Label Studio project in step: the RQ jobs, and the pieces the
webhook handler shares with them.

Three jobs, each coalesced per project (a trigger while one waits joins it) and run on the
``alrank-sync`` queue, so they never hold up a ranking and never block labelling:

- ``sync_tasks`` reads every task through Label Studio's API and upserts the ones that are
  new or changed as items, in pages, with progress on the job; items of tasks Label Studio
  no longer has are deleted.
- ``sync_annotations`` reads every annotation (Label Studio's JSON export), makes the
  project's labels from Label Studio match them, and asks for a retrain.
- ``push_order`` writes the published ranking's head to Label Studio as predictions of a
  new model version with ``score`` = rank, switches the project's ``model_version`` to it
  and removes the version before. One bulk write of ``head`` predictions per published
  ranking, one push at a time.

Each records how it ended on the connection (``GET /v1/projects/{project}`` shows it), so a
Label Studio that is down shows up there; the next trigger tries again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter

from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.job import Dependency
from rq.serializers import JSONSerializer

from workers import defaults
from workers.exceptions import InvalidInput, NotFound
from workers.label_studio.annotations import apply_annotations, ensure_items, forget_annotations
from workers.label_studio.client import LabelStudio, LabelStudioError
from workers.label_studio.config import (
    LabelConfig,
    prediction_result,
)
from workers.queueing import job_pending, request_refresh
from workers.store import Store, now_iso
from workers.telemetry import job_meta
from workers.tool_order import tool_order

log = logging.getLogger(__name__)

KINDS = ("sync_tasks", "sync_annotations", "push_order")
CLAIM_SECONDS = 600
"""A queued job's claim outlives a lost job by this long at most."""


class NotConnected(InvalidInput):
    """The project has no Label Studio connection yet (Label Studio has not called /setup)."""


def settings(link: dict) -> dict:
    """The connection's settings, defaults filled in."""
    given = link.get("settings") or {}
    return {
        "head": given.get("head", defaults.LABEL_STUDIO_HEAD),
        "url": given.get("url"),
        "order_schema": given.get("order_schema"),
    }


def order_schema(link: dict) -> str | None:
    """The schema whose ranking orders Label Studio's queue: the one set, else the label
    config's first ``Choices``."""
    chosen = settings(link)["order_schema"]
    if chosen:
        return chosen
    config = link.get("config")
    return config["controls"][0]["name"] if config else None


def version_name(schema: str, meta: dict) -> str:
    """The Label Studio model version of one published ranking: new with every ranking, so
    switching to it re-orders the queue at once."""
    return f"alrank-{schema}-v{meta.get('model_version') or 0}-r{meta['ranking_id']}"


def order_score(rank: int, ranked: int) -> float:
    """A prediction's ``score`` for a task at ``rank`` (1 first) of a ranking of ``ranked``
    items: rising with the rank and within [0, 1], as Label Studio requires, so its
    ``Uncertainty sampling`` (lowest score first) serves the ranking's order."""
    return rank / (ranked + 1)


def connected(store: Store, project: str) -> tuple[dict, LabelConfig, LabelStudio]:
    link = store.label_studio(project)
    if not link.get("project") or not link.get("config"):
        raise NotConnected(f"project {project!r} is not connected to Label Studio yet")
    if not link.get("token") or not (settings(link)["url"] or link.get("url")):
        raise NotConnected("Label Studio sent no URL or API token at setup, so alrank cannot read its API")
    url = settings(link)["url"] or link["url"]
    return link, LabelConfig.from_json(link["config"]), LabelStudio(url, link["token"])


def enqueue(
    store: Store, conn: Redis, project: str, kind: str, reason: str, function: str | None = None
) -> str | None:
    """Queue a sync job of ``kind`` (``function``, by default this module's function of that
    name) unless one is already waiting; its id, or None."""
    if not store.claim_sync_job(project, kind, CLAIM_SECONDS):
        return None
    job_id = f"{kind.replace('_', '-')}-{uuid.uuid4().hex[:12]}"
    queue = Queue(defaults.SYNC_QUEUE_NAME, connection=conn, serializer=JSONSerializer)
    running = store.sync_job_running(project, kind, None)
    try:
        queue.enqueue_call(
            function or f"workers.label_studio.sync.{kind}",
            args=(project,),
            job_id=job_id,
            timeout=defaults.JOB_TIMEOUT,
            retry=Retry(max=defaults.JOB_RETRIES),
            result_ttl=defaults.JOB_RESULT_TTL,
            failure_ttl=defaults.JOB_RESULT_TTL,
            meta={"project": project, "schema": None, "reason": reason, **job_meta()},
            description=f"{kind} {project} ({reason})",
            # one at a time per project and kind: two task syncs or pushes never interleave
            depends_on=Dependency(jobs=[running], allow_failure=True)
            if running and job_pending(queue, running)
            else None,
        )
    except Exception:
        store.release_sync_job(project, kind)
        raise
    return job_id


def after_publish(store: Store, conn: Redis, project: str, schema: str) -> None:
    """Called when a ranking is published: push it to Label Studio if it orders the queue."""
    link = store.label_studio(project)
    if link.get("project") and schema == order_schema(link):
        enqueue(store, conn, project, "push_order", f"ranking of {schema} published")


def _progress(stage: str, done: int, total: int) -> None:
    job = get_current_job()
    if job is not None:
        fraction = done / total if total else 1.0
        job.meta["progress"] = {"stage": stage, "fraction": round(fraction, 3), "done": done, "total": total}
        job.save_meta()


def _run(kind: str, project: str, work) -> dict:
    """Run one sync job: give back its claim, record how it ended on the connection."""
    job = get_current_job()
    conn: Redis = job.connection if job is not None else Redis()
    store = Store(conn)
    store.release_sync_job(project, kind)
    own_id = job.id if job is not None else "inline"
    store.sync_job_running(project, kind, own_id, defaults.JOB_TIMEOUT)
    try:
        return _work(store, conn, kind, project, work)
    finally:
        if store.sync_job_running(project, kind, None) == own_id:
            store.sync_job_running(project, kind, "")


def _work(store: Store, conn: Redis, kind: str, project: str, work) -> dict:
    field = kind.split("_", 1)[1]
    started = time.perf_counter()
    previous = store.label_studio(project).get(field) or {}
    store.save_label_studio(project, **{field: {**previous, "state": "running", "at": now_iso()}})
    try:
        store.get_project(project)
        link, config, client = connected(store, project)
    except (NotFound, NotConnected) as exc:
        return {"status": "skipped", "reason": str(exc)}
    except LabelStudioError as exc:  # the token exchange failed
        _failed(store, project, field, exc)
        raise
    try:
        queue = Queue(defaults.QUEUE_NAME, connection=conn, serializer=JSONSerializer)
        result = work(store, queue, link, config, client)
    except Exception as exc:
        _failed(store, project, field, exc)
        raise
    result = {"status": "done", **result, "seconds": round(time.perf_counter() - started, 3)}
    store.save_label_studio(project, **{field: {"state": "done", "at": now_iso(), **result}})
    return result


def _failed(store: Store, project: str, field: str, exc: Exception) -> None:
    """Say on the connection and the job why a sync failed. Only Label Studio's errors are
    retried (it may be back in a moment); anything else would fail the same way again."""
    reason = str(exc) if isinstance(exc, LabelStudioError) else f"{type(exc).__name__}: {exc}"
    store.save_label_studio(project, **{field: {"state": "failed", "at": now_iso(), "error": reason}})
    job = get_current_job()
    if job is not None:
        job.meta["error"] = reason
        job.save_meta()
        if not isinstance(exc, LabelStudioError):
            job.retries_left = 0


def sync_tasks(project: str) -> dict:
    """RQ job: Label Studio's tasks become the project's items."""

    def work(store: Store, queue: Queue, link: dict, config: LabelConfig, client: LabelStudio) -> dict:
        proj = store.get_project(project)
        seen: set[str] = set()
        changed = 0
        for tasks, total in client.tasks(int(link["project"])):
            changed += ensure_items(store, proj, config, tasks)
            seen.update(str(t["id"]) for t in tasks)
            _progress("reading tasks", len(seen), total)
        gone = [
            item_id
            for item_id, doc in store.iter_items(project)
            if "label_studio_task" in (doc.get("metadata") or {}) and item_id not in seen
        ]
        for item_id in gone:
            store.delete_item(proj, item_id)
        if changed or gone:
            for schema in proj["schemas"]:
                request_refresh(store, queue, project, schema["name"], "Label Studio tasks synced")
        return {"tasks": len(seen), "changed": changed, "deleted": len(gone)}

    return _run("sync_tasks", project, work)


def sync_annotations(project: str) -> dict:
    """RQ job (START_TRAINING): the project's labels from Label Studio match its annotations,
    then every schema retrains."""

    def work(store: Store, queue: Queue, link: dict, config: LabelConfig, client: LabelStudio) -> dict:
        proj = store.get_project(project)
        tasks = client.annotated_tasks(int(link["project"]))
        ensure_items(store, proj, config, tasks)
        annotations = [{**a, "task": t["id"]} for t in tasks for a in t.get("annotations") or [] if "id" in a]
        _progress("storing labels", 0, len(annotations))
        known = set(store.label_studio_annotations(project))
        removed = forget_annotations(
            store, queue, project, sorted(known - {str(a["id"]) for a in annotations})
        )
        applied = apply_annotations(store, queue, proj, config, annotations)
        _progress("storing labels", len(annotations), len(annotations))
        for schema in proj["schemas"]:
            request_refresh(store, queue, project, schema["name"], "Label Studio asked to train")
        return {
            "annotations": len(annotations),
            "new": applied["new"],
            "removed": removed + applied["removed"],
        }

    return _run("sync_annotations", project, work)


def push_order(project: str) -> dict:
    """RQ job: the published ranking's head becomes Label Studio's queue."""

    def work(store: Store, queue: Queue, link: dict, config: LabelConfig, client: LabelStudio) -> dict:
        schema = order_schema(link)
        if schema is None:
            return {"pushed": 0, "reason": "no schema orders the queue"}
        head = settings(link)["head"]
        proj = store.get_project(project)
        meta, placed = tool_order(store, proj, schema, head * 2)
        if meta is None:
            return {"pushed": 0, "reason": f"schema {schema!r} has no ranking yet"}
        version = version_name(schema, meta)
        pushed = link.get("order") or {}
        previous = pushed.get("version")
        if previous == version and pushed.get("head") == head:
            return {"version": version, "pushed": 0, "reason": "already in Label Studio"}
        docs = store.get_items(project, [p.item for p in placed])
        tasks = [
            (doc["metadata"]["label_studio_task"], p)
            for p, doc in zip(placed, docs, strict=True)
            if doc is not None and "label_studio_task" in (doc.get("metadata") or {})
        ][:head]
        others = [c.name for c in config.controls if c.name != schema]
        extra = {s: store.ranking_entries(project, s, [str(t) for t, _ in tasks])[1] for s in others}
        predictions = []
        for k, (task, p) in enumerate(tasks):
            predicted = {}
            # an evaluation task opens with no pre-annotation: a suggestion would pull the
            # annotator towards the model it is meant to measure
            if p.entry is not None:
                predicted[schema] = (p.entry.label, p.entry.confidence)
                for s in others:
                    e = extra[s][k]
                    if e is not None:
                        predicted[s] = (e.label, e.confidence)
            predictions.append(
                {
                    "task": task,
                    "model_version": version,
                    "score": order_score(k + 1, max(meta["ranked"], len(tasks))),
                    "result": prediction_result(config, predicted),
                }
            )
        _progress("writing predictions", 0, len(predictions))
        ls_project = int(link["project"])
        if predictions:
            client.import_predictions(ls_project, predictions)
            client.set_model_version(ls_project, version)
        _progress("writing predictions", len(predictions), len(predictions))
        if previous and previous != version:
            try:
                client.delete_predictions(ls_project, previous)
            except LabelStudioError as exc:  # stale predictions only cost Label Studio space
                log.warning("could not delete Label Studio predictions of %s: %s", previous, exc)
        return {
            "version": version,
            "ranking_id": meta["ranking_id"],
            "pushed": len(predictions),
            "head": head,
            "sources": dict(Counter(p.source for _, p in tasks)),
        }

    return _run("push_order", project, work)
