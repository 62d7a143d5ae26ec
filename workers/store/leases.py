"""Batches and leases: handing items to annotators and taking them back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis

from workers.settings import active_learning
from workers.store import keys
from workers.store._codec import text
from workers.store.rankings import RankingEntry
from workers.store.scripts import Scripts


@dataclass
class BatchItem:
    """One leased item: its stored document and its entry in the ranking (if any)."""

    id: str
    source: str
    doc: dict
    entry: RankingEntry | None


@dataclass
class Batch:
    """Items leased to one annotator, in order, with the ranking they came from."""

    ranking_id: str
    ranking_meta: dict | None
    items: list[BatchItem]


class Leases:
    redis: Redis
    scripts: Scripts
    with_ranking_keys: Callable[..., Any]

    def next_batch(
        self,
        project: str,
        schema: str,
        annotator: str,
        size: int,
        lease_seconds: int,
        explore_share: float,
        labels_needed: int,
        eval_share: float = 0.0,
        overlap_share: float = 0.0,
        review_share: float = 0.0,
    ) -> Batch:
        """Lease up to ``size`` items to ``annotator``: the shares (fractions of the items
        asked for) from the evaluation sample, the review and overlap queues and the
        ranking's random list, the rest from its order."""

        def call(rid: str):
            def part(name: str) -> str:
                return keys.ranking_part(project, schema, rid, name)

            touched = [
                keys.items(project),
                keys.annotator_counts(project, schema),
                keys.labels(project, schema),
                keys.leases(project, schema),
                keys.owners(project, schema),
                keys.annotator_leases(project, schema, annotator),
                keys.evaluation(project, schema),
                keys.ranking(project, schema),
                *(part(name) for name in ("order", "explore", "info", "pos", "returned")),
                *(part(name) for name in ("head:order", "head:explore", "meta")),
                keys.asked(project, schema),
                keys.eval_sample(project, schema),
                keys.eval_sample_head(project, schema),
                keys.random_draws(project, schema),
                *(
                    key(project, schema, q)
                    for q in keys.QUEUES
                    for key in (keys.queue, keys.queue_due, keys.queue_head)
                ),
            ]
            args: list[str | int] = [
                annotator,
                size,
                lease_seconds * 1000,
                repr(float(explore_share)),
                labels_needed,
                max(4 * size, 50),  # fallback: how many pool items to draw from; lists: to look at
                repr(float(eval_share)),
                rid,
                repr(float(overlap_share)),
                repr(float(review_share)),
            ]
            return self.scripts.next_batch(keys=touched, args=args)

        reply = self.with_ranking_keys(project, schema, call)
        rid, meta = text(reply[0]), text(reply[1])
        items = [
            BatchItem(
                text(reply[k]),
                text(reply[k + 1]),
                json.loads(reply[k + 2]),
                RankingEntry.from_json(reply[k + 3]) if reply[k + 3] else None,
            )
            for k in range(2, len(reply), 4)
            if reply[k + 2]  # deleted while being leased
        ]
        return Batch(rid, json.loads(meta) if meta else None, items)

    def release(self, project: str, schema: str, annotator: str, items: list[str] | None) -> int:
        def call(rid: str):
            touched = [
                keys.leases(project, schema),
                keys.owners(project, schema),
                keys.annotator_leases(project, schema, annotator),
                keys.ranking(project, schema),
                keys.ranking_part(project, schema, rid, "pos"),
                keys.ranking_part(project, schema, rid, "returned"),
            ]
            args: list[str] = [annotator, rid, *(items or [])]
            return self.scripts.release(keys=touched, args=args)

        return int(self.with_ranking_keys(project, schema, call))

    def counts(self, project: dict, schema: str) -> dict:
        p = project["name"]
        now_ms = int(time.time() * 1000)
        needed = active_learning(project)["min_annotations_per_instance"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(keys.labels(p, schema))
        pipe.zcount(keys.leases(p, schema), f"({now_ms}", "+inf")
        if needed > 1:
            pipe.hvals(keys.annotator_counts(p, schema))
        else:
            pipe.hlen(keys.annotator_counts(p, schema))
        labelled_any, leased, nlab = pipe.execute()
        done = sum(int(v) >= needed for v in nlab) if needed > 1 else int(nlab)
        return {"labelled": done, "with_any_label": int(labelled_any), "leased": int(leased)}
