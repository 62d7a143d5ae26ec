"""Bringing data written by an earlier version to the current key layout.

Layout 1 kept a project's keys under ``alrank:p:P:`` and a simulation's under
``alrank:sim:ID:``; layout 2 (``workers.store.keys``) wraps ``P`` and ``ID`` in braces, a
Redis Cluster hash tag. Layout 3 adds the indexes listings page through (each project's
``item_index`` and each schema's ``labelled_index``) and the labels' times; labels stored
before it keep no time. ``migrate`` takes the data through each step it has not had, once,
under a lock, and records the layout reached; it runs when a worker or the API starts, and
costs one ``GET`` once the data is current. Stop every process of the old version before
starting the new.
"""

from __future__ import annotations

import json
import logging
import time

from redis import Redis

from workers import defaults
from workers.store import keys
from workers.store._codec import text

log = logging.getLogger(__name__)

LAYOUT = 3
"""The layout this version reads and writes."""

LOCK_SECONDS = 600
"""How long one process may hold the migration before another takes over."""


def _renamed(key: str) -> str | None:
    """The layout-2 name of a layout-1 key, or None for a key of neither kind."""
    for kind in ("p", "sim"):
        old = f"{defaults.KEY_PREFIX}:{kind}:"
        if key.startswith(old) and not key.startswith(old + "{"):
            owner, _, rest = key[len(old) :].partition(":")
            if kind == "p":
                return f"{keys.project(owner)}{rest}"
            return f"{keys.simulation(owner)}{rest}"
    return None


def migrate(redis: Redis) -> int:
    """Rename layout-1 keys to the current layout; returns how many were renamed."""
    if int(redis.get(keys.layout()) or 1) >= LAYOUT:
        return 0
    lock = keys.layout() + ":lock"
    while not redis.set(lock, 1, nx=True, ex=LOCK_SECONDS):
        # another process migrates: wait for it to finish
        time.sleep(0.5)
        if int(redis.get(keys.layout()) or 1) >= LAYOUT:
            return 0
    try:
        renamed = 0
        if int(redis.get(keys.layout()) or 1) < 2:
            for kind in ("p", "sim"):
                for raw in redis.scan_iter(match=f"{defaults.KEY_PREFIX}:{kind}:*", count=1000):
                    new = _renamed(text(raw))
                    if new is not None:
                        redis.rename(raw, new)
                        renamed += 1
            if renamed:
                log.warning("renamed %d keys to key layout 2 (Redis Cluster hash tags)", renamed)
        indexed = build_indexes(redis)
        if indexed:
            log.warning("indexed %d items and labelled items for listings (key layout 3)", indexed)
        redis.set(keys.layout(), LAYOUT)
        return renamed
    finally:
        redis.delete(lock)


def build_indexes(redis: Redis, chunk: int = 5000) -> int:
    """Index every project's items and every schema's labelled items; returns how many
    entries were added (indexing twice adds none)."""
    added = 0

    def index(source: str, target: str) -> int:
        found, batch = 0, []
        for field, _ in redis.hscan_iter(source, count=chunk):
            batch.append(field)
            if len(batch) >= chunk:
                found += int(redis.zadd(target, dict.fromkeys(batch, 0)) or 0)
                batch = []
        if batch:
            found += int(redis.zadd(target, dict.fromkeys(batch, 0)) or 0)
        return found

    for raw in redis.smembers(keys.projects()):
        project = text(raw)
        added += index(keys.items(project), keys.item_index(project))
        config = redis.get(keys.config(project))
        for schema in json.loads(config).get("schemas", []) if config else []:
            added += index(keys.labels(project, schema["name"]), keys.labelled_index(project, schema["name"]))
    return added
