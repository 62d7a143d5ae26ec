"""Published rankings: written under a fresh id, then swapped in with one command."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from redis import Redis

from workers import defaults
from workers.store import keys
from workers.store._codec import now_iso, text


class RankingEntry(NamedTuple):
    """One item of a published ranking, as the refresh writes it and a batch reads it."""

    score: float
    """The strategy's score (higher: more informative)."""
    rank: int
    """Position in the ranking, 1 first."""
    label: Any
    """The model's predicted label (a list for multi-label), or None before a model."""
    confidence: float | None
    """The model's confidence in that label."""

    def to_json(self) -> str:
        return json.dumps(list(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> RankingEntry:
        return cls(*json.loads(raw))


STALE_RETRIES = 20
"""Times a script is named keys again after another ranking was published under it."""


class Rankings:
    redis: Redis
    seen_rankings: dict[tuple[str, str], str]
    """The ranking id last seen per (project, schema); see ``with_ranking_keys``."""

    def with_ranking_keys(self, project: str, schema: str, call: Callable[[str], Any]) -> Any:
        """``call(rid)`` with the id of the published ranking ('' for none), again while it
        answers ``stale`` (another ranking was published since the id was read).

        The id last seen is remembered per schema: rankings change once a retrain, so the
        hot path (``GET /next``) saves the round trip that would read it each time."""
        schema_key = (project, schema)
        rid = self.seen_rankings.get(schema_key)
        for _ in range(STALE_RETRIES):
            if rid is None:
                current = self.redis.get(keys.ranking(project, schema))
                rid = text(current) if current is not None else ""
            reply = call(rid)
            if reply != b"stale":
                self.seen_rankings[schema_key] = rid
                return reply
            rid = None
        raise RuntimeError(f"the ranking of {project}/{schema} kept changing under a request")

    def publish_ranking(
        self,
        project: str,
        schema: str,
        order: list[str],
        explore: list[str],
        entries: dict[str, RankingEntry],
        meta: dict,
    ) -> str:
        """Write a ranking under a fresh id, then switch to it in one step; the one it
        replaces stays readable for ``RANKING_GRACE_SECONDS``. ``order`` is the head of the
        ranking, ``explore`` its random list, ``entries`` the items of both."""
        rid = str(self.redis.incr(keys.ranking_sequence(project, schema)))

        def part(name: str) -> str:
            return keys.ranking_part(project, schema, rid, name)

        for name, values in (("order", order), ("explore", explore)):
            for start in range(0, len(values), 10_000):
                self.redis.rpush(part(name), *values[start : start + 10_000])
        fields = [(item, entry.to_json()) for item, entry in entries.items()]
        for start in range(0, len(fields), 10_000):
            self.redis.hset(part("info"), mapping=dict(fields[start : start + 10_000]))
        # each entry's place in the whole order (its rank - 1): a head item's index in the
        # order list; items come back through ``returned`` in this order
        places = [(item, entry.rank - 1) for item, entry in entries.items()]
        for start in range(0, len(places), 10_000):
            self.redis.hset(part("pos"), mapping=dict(places[start : start + 10_000]))
        meta = {**meta, "ranking_id": rid, "published_at": now_iso()}
        self.redis.set(part("meta"), json.dumps(meta))
        old = self.redis.getset(keys.ranking(project, schema), rid)
        if old is not None:
            pipe = self.redis.pipeline(transaction=False)
            for name in keys.RANKING_PARTS:
                pipe.expire(
                    keys.ranking_part(project, schema, text(old), name), defaults.RANKING_GRACE_SECONDS
                )
            pipe.execute()
        return rid

    def ranking_meta(self, project: str, schema: str, rid: str | None = None) -> dict | None:
        """A ranking's metadata: the published one's, or ranking ``rid``'s."""
        if rid is None:
            current = self.redis.get(keys.ranking(project, schema))
            if current is None:
                return None
            rid = text(current)
        meta = self.redis.get(keys.ranking_part(project, schema, rid, "meta"))
        return json.loads(meta) if meta is not None else None

    def ranking_entries(
        self, project: str, schema: str, ids: list[str]
    ) -> tuple[dict | None, list[RankingEntry | None]]:
        """The published ranking's metadata and its entries for ``ids`` (None for an item it
        does not rank: labelled, or new since)."""

        def read(rid: str) -> list:
            return self.redis.hmget(keys.ranking_part(project, schema, rid, "info"), ids) if ids else []

        meta, entries = self._read_published(project, schema, read)
        return meta, [RankingEntry.from_json(e) if e else None for e in entries or [None] * len(ids)]

    def ranking_head(
        self, project: str, schema: str, n: int
    ) -> tuple[dict | None, list[tuple[str, RankingEntry]]]:
        """The published ranking's metadata and its first ``n`` items with their entries (items
        labelled since it was published included: the caller skips what it must)."""

        def read(rid: str) -> list:
            head = self.redis.lrange(keys.ranking_part(project, schema, rid, "order"), 0, n - 1)
            order = [text(i) for i in head]
            info = self.redis.hmget(keys.ranking_part(project, schema, rid, "info"), order) if order else []
            return [(item, RankingEntry.from_json(e)) for item, e in zip(order, info, strict=True) if e]

        meta, head = self._read_published(project, schema, read)
        return meta, head or []

    def ranking_lists(
        self, project: str, schema: str, n: int
    ) -> tuple[dict | None, list[tuple[str, RankingEntry]], list[tuple[str, RankingEntry]]]:
        """The published ranking's metadata and the first ``n`` items of its order and of its
        random list, with their entries, read from one ranking."""

        def read(rid: str) -> list:
            lists = []
            for name in ("order", "explore"):
                ids = [
                    text(i)
                    for i in self.redis.lrange(keys.ranking_part(project, schema, rid, name), 0, n - 1)
                ]
                info = self.redis.hmget(keys.ranking_part(project, schema, rid, "info"), ids) if ids else []
                lists.append(
                    [(item, RankingEntry.from_json(e)) for item, e in zip(ids, info, strict=True) if e]
                )
            return lists

        meta, lists = self._read_published(project, schema, read)
        order, explore = lists or ([], [])
        return meta, order, explore

    def _read_published(
        self, project: str, schema: str, read: Callable[[str], Any]
    ) -> tuple[dict | None, Any]:
        """``read(rid)`` of the published ranking with its metadata; read again if another
        ranking replaced it (and its grace period ran out) in between."""
        for _ in range(STALE_RETRIES):
            current = self.redis.get(keys.ranking(project, schema))
            if current is None:
                return None, None
            rid = text(current)
            found = read(rid)
            meta = self.redis.get(keys.ranking_part(project, schema, rid, "meta"))
            if meta is not None:
                return json.loads(meta), found
        raise RuntimeError(f"the ranking of {project}/{schema} kept changing under a request")
