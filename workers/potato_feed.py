"""alrank's order into a running Potato (2.12), through the one channel Potato has for it.

Potato serves items by a priority only with ``assignment_strategy: priority``, and an
item's priority is fixed when the item is loaded (``triage.signal_field`` reads it from a
field of the item). Nothing changes the priority of an item already loaded: the directory
watcher's updates keep it, MCP ``add_items`` refuses ids it has, automation sets one fixed
value. So alrank feeds Potato just in time: after each published ranking a worker writes
the head of the ranking (the items Potato has not been given yet) as a new JSON Lines file
into Potato's watched ``data_directory``, each item with an ``alrank_priority`` above every
earlier file's. Potato loads the file within its ``watch_poll_interval`` and serves the
newest ranking's best item first.

The pool itself stays in alrank (upload it there); Potato's ``data_files`` need hold only
what annotators see first, if anything.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

from redis import Redis
from rq import get_current_job

from workers import defaults
from workers.exceptions import NotFound
from workers.store import Store, now_iso
from workers.tool_order import tool_order

log = logging.getLogger(__name__)

KIND = "potato_feed"
PRIORITY_FIELD = "alrank_priority"
SOURCE_FIELD = "alrank_source"
"""How alrank chose the item: ``ranking``, ``random`` (exploration) or ``evaluation`` (the
evaluation sample), so evaluation items stay recognisable in Potato's data and output."""
STEP = 1_000_000
"""Priorities of one file span less than this; each file's start above the last's."""


def settings(store: Store, project: str) -> dict:
    given = store.potato(project).get("settings") or {}
    return {
        "data_directory": given.get("data_directory"),
        "head": given.get("head", defaults.POTATO_HEAD),
        "order_schema": given.get("order_schema"),
    }


def order_schema(store: Store, project: dict) -> str:
    return settings(store, project["name"])["order_schema"] or project["schemas"][0]["name"]


def after_publish(store: Store, conn: Redis, project: str, schema: str) -> None:
    """Called when a ranking is published: feed its head to Potato when this schema orders
    Potato's queue and the project has a data directory to write to."""
    if not settings(store, project)["data_directory"]:
        return
    if schema == order_schema(store, store.get_project(project)):
        enqueue(store, conn, project, f"ranking of {schema} published")


def enqueue(store: Store, conn: Redis, project: str, reason: str) -> str | None:
    """Queue a feed unless one is already waiting; its id, or None."""
    from workers.label_studio.sync import enqueue as enqueue_sync

    return enqueue_sync(store, conn, project, KIND, reason, "workers.potato_feed.feed")


def feed(project: str) -> dict:
    """RQ job: write the published ranking's head to Potato's data directory."""
    job = get_current_job()
    store = Store(job.connection if job is not None else Redis())
    store.release_sync_job(project, KIND)
    try:
        result = write_head(store, project)
    except NotFound as exc:
        return {"status": "skipped", "reason": str(exc)}
    except OSError as exc:
        reason = f"cannot write to Potato's data directory: {exc}"
        store.save_potato(project, feed={"state": "failed", "at": now_iso(), "error": reason})
        if job is not None:
            job.meta["error"] = reason
            job.save_meta()
        raise
    store.save_potato(project, feed={"state": "done", "at": now_iso(), **result})
    return result


def write_head(store: Store, project: str) -> dict:
    """The head of the ranking Potato has not been given, as one new file; returns what
    was written."""
    proj = store.get_project(project)
    chosen = settings(store, project)
    directory = chosen["data_directory"]
    if not directory:
        return {"written": 0, "reason": "no data_directory set"}
    schema = order_schema(store, proj)
    # Potato keeps every item it was given: only those it has not had yet go in a file
    meta, placed = tool_order(
        store, proj, schema, chosen["head"], exclude=lambda ids: store.potato_given(project, ids)
    )
    if meta is None:
        return {"written": 0, "reason": f"schema {schema!r} has no ranking yet"}
    picked = [(p.item, p.source) for p in placed]
    if not picked:
        return {"written": 0, "ranking_id": meta["ranking_id"], "reason": "Potato has every item of the head"}
    docs = store.get_items(project, [item for item, _ in picked])
    sequence = store.next_potato_file(project)
    lines = []
    for position, ((item, source), doc) in enumerate(zip(picked, docs, strict=True), 1):
        if doc is None:
            continue
        record = {**(doc.get("metadata") or {}), "id": item, "text": doc.get("text") or ""}
        record[PRIORITY_FIELD] = sequence * STEP + (STEP - position)
        record[SOURCE_FIELD] = source
        lines.append(json.dumps(record, ensure_ascii=False))
    name = f"alrank-{project}-{sequence:06d}.jsonl"
    path = Path(directory) / name
    temporary = Path(directory) / f".{name}.{os.getpid()}.tmp"  # not *.jsonl: Potato skips it
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # whole, or not at all, when Potato's watcher looks
    store.potato_gave(project, [item for item, _ in picked])
    return {
        "written": len(lines),
        "file": name,
        "ranking_id": meta["ranking_id"],
        "first": picked[0][0],
        "sources": dict(Counter(source for _, source in picked)),
        "at_unix": round(time.time(), 3),
    }
