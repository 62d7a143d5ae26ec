"""Labels: each annotator's answer per item and schema, counts and revisions."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis import Redis

from workers.exceptions import InvalidInput
from workers.store import keys
from workers.store._codec import text
from workers.store.scripts import Scripts

ACTIVITY_HOURS = 48
"""Hours of each annotator's hourly label counts kept, for their pace."""


class Labels:
    redis: Redis
    scripts: Scripts
    with_ranking_keys: Callable[..., Any]

    def check_items_exist(self, project: str, ids: list[str]) -> None:
        key = keys.items(project)
        unique = list(dict.fromkeys(ids))
        pipe = self.redis.pipeline(transaction=False)
        for item_id in unique:
            pipe.hexists(key, item_id)
        missing = [i for i, ok in zip(unique, pipe.execute(), strict=True) if not ok]
        if missing:
            _raise_unknown_items(missing)

    def upsert_labels(
        self, project: str, schema: str, labels: list[dict], needed: int = 1
    ) -> tuple[int, int, int]:
        """Store labels; returns (labels new to their item and annotator, labels since the
        last retrain trigger, items with a label). An item still short of its ``needed``
        annotators goes back to the head of the ranking for the next one."""
        annotators = list(dict.fromkeys(label["annotator"] for label in labels))

        def call(rid: str):
            touched = [
                keys.items(project),
                keys.labels(project, schema),
                keys.annotator_counts(project, schema),
                keys.label_revision(project, schema),
                keys.since_trigger(project, schema),
                keys.leases(project, schema),
                keys.owners(project, schema),
                keys.ranking(project, schema),
                keys.ranking_part(project, schema, rid, "pos"),
                keys.ranking_part(project, schema, rid, "returned"),
                keys.labelled_index(project, schema),
                keys.label_times(project, schema),
                *(keys.annotator_leases(project, schema, a) for a in annotators),
            ]
            lease_key = {a: len(touched) - len(annotators) + k + 1 for k, a in enumerate(annotators)}
            argv: list[str | int] = [needed, rid, int(time.time() * 1000)]
            for label in labels:
                value = json.dumps(label["value"])
                argv += [label["item"], label["annotator"], value, lease_key[label["annotator"]]]
            return self.scripts.upsert_labels(keys=touched, args=argv)

        reply = self.with_ranking_keys(project, schema, call)
        if reply[0] == -1:
            _raise_unknown_items([m.decode() for m in reply[1]])
        self.note_activity(project, schema, Counter(label["annotator"] for label in labels))
        return int(reply[0]), int(reply[1]), int(reply[2])

    def note_activity(self, project: str, schema: str, counts: Counter, now: float | None = None) -> None:
        """Count each annotator's labels, in all and by hour, for their pace."""
        now = time.time() if now is None else now
        hour = int(now // 3600)
        pipe = self.redis.pipeline(transaction=False)
        for annotator, n in counts.items():
            pipe.hincrby(keys.activity(project, schema), f"{annotator}\x00labels", n)
            pipe.hset(keys.activity(project, schema), f"{annotator}\x00last", round(now, 3))
            pipe.hsetnx(keys.activity(project, schema), f"{annotator}\x00first", round(now, 3))
            pipe.hincrby(keys.activity_hours(project, schema), f"{annotator}\x00{hour}", n)
            pipe.hdel(keys.activity_hours(project, schema), f"{annotator}\x00{hour - ACTIVITY_HOURS}")
        pipe.execute()

    def activity(self, project: str, schema: str, now: float | None = None) -> dict[str, dict]:
        """Per annotator: labels sent, when first and last, and labels in the last hour and
        the last 24 hours."""
        now = time.time() if now is None else now
        hour = int(now // 3600)
        out: dict[str, dict] = {}
        for field, value in self.redis.hgetall(keys.activity(project, schema)).items():
            annotator, what = text(field).split("\x00")
            out.setdefault(annotator, {"last_hour": 0, "last_day": 0})[what] = float(value)
        for field, value in self.redis.hgetall(keys.activity_hours(project, schema)).items():
            annotator, at = text(field).split("\x00")
            ago = hour - int(at)
            record = out.setdefault(annotator, {"last_hour": 0, "last_day": 0})
            if ago == 0:
                record["last_hour"] += int(value)
            if 0 <= ago < 24:
                record["last_day"] += int(value)
        return out

    def delete_label(self, project: str, schema: str, item: str, annotator: str | None) -> int:
        def call(rid: str):
            touched = [
                keys.labels(project, schema),
                keys.annotator_counts(project, schema),
                keys.label_revision(project, schema),
                keys.ranking(project, schema),
                keys.ranking_part(project, schema, rid, "pos"),
                keys.ranking_part(project, schema, rid, "returned"),
                keys.labelled_index(project, schema),
                keys.label_times(project, schema),
            ]
            return self.scripts.delete_label(keys=touched, args=[item, annotator or "", rid])

        return int(self.with_ranking_keys(project, schema, call))

    def load_labels(self, project: str, schema: str) -> dict[str, dict[str, Any]]:
        key = keys.labels(project, schema)
        return {k.decode(): json.loads(v) for k, v in self.redis.hscan_iter(key, count=5000)}

    def load_label_times(self, project: str, schema: str) -> dict[str, dict[str, float]]:
        """Per labelled item, when each annotator's label was last set (Unix ms)."""
        key = keys.label_times(project, schema)
        return {k.decode(): json.loads(v) for k, v in self.redis.hscan_iter(key, count=5000)}

    def item_labels(self, project: str, schema: str, item: str) -> dict[str, Any]:
        doc = self.redis.hget(keys.labels(project, schema), item)
        return json.loads(doc) if doc is not None else {}

    def annotator_counts(self, project: str, schema: str, ids: list[str]) -> list[int]:
        """How many annotators labelled each item."""
        counts = self.redis.hmget(keys.annotator_counts(project, schema), ids) if ids else []
        return [int(c) if c is not None else 0 for c in counts]

    def labelled_count(self, project: str, schema: str) -> int:
        """Items with at least one label."""
        return int(self.redis.hlen(keys.labels(project, schema)))

    def eval_items(self, project: str, schema: str) -> set[str]:
        """Items handed out as part of the random evaluation sample."""
        return {text(m) for m in self.redis.smembers(keys.evaluation(project, schema))}

    def label_revision(self, project: str, schema: str) -> int:
        return int(self.redis.get(keys.label_revision(project, schema)) or 0)

    def reset_since(self, project: str, schema: str, covered: int | None = None) -> None:
        """Count the labels a retrain trigger covered as spent: all of them (``None``), or
        the ``covered`` the trigger saw, keeping any stored since."""
        if covered is None:
            self.redis.set(keys.since_trigger(project, schema), 0)
        else:
            self.scripts.spend_since(keys=[keys.since_trigger(project, schema)], args=[covered])


def _raise_unknown_items(missing: list[str]) -> None:
    shown = ", ".join(repr(m) for m in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    raise InvalidInput(
        f"labels refer to items that are not in the project: {shown}{more}; upload the items first",
        {"unknown_items": missing},
    )
