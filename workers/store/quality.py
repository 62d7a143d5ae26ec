"""Label quality: the queues of labelled items sent to another annotator, and the figures
(agreement, reliability, label issues) the last refresh found."""

from __future__ import annotations

import json

from redis import Redis

from workers.store import keys
from workers.store._codec import now_iso, text


class Quality:
    redis: Redis

    def publish_queue(self, project: str, schema: str, queue: str, due: dict[str, int]) -> None:
        """Replace queue ``queue`` with ``due`` (item id -> its number of annotators now),
        in that order, in one step: a batch sees the old queue or the new one."""
        pipe = self.redis.pipeline(transaction=True)
        for key in (keys.queue(project, schema, queue), keys.queue_due(project, schema, queue)):
            pipe.delete(key)
        pipe.set(keys.queue_head(project, schema, queue), 0)
        ids = list(due)
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            pipe.rpush(keys.queue(project, schema, queue), *chunk)
            pipe.hset(keys.queue_due(project, schema, queue), mapping={i: due[i] for i in chunk})
        pipe.execute()

    def queue_items(self, project: str, schema: str, queue: str) -> list[str]:
        """The queue's items not yet passed over, in order."""
        head = int(self.redis.get(keys.queue_head(project, schema, queue)) or 0)
        return [text(i) for i in self.redis.lrange(keys.queue(project, schema, queue), head, -1)]

    def queue_waiting(self, project: str, schema: str, queue: str) -> set[str]:
        """The queue's items still wanting another annotator, as ``GET /next`` judges them:
        listed, still in the pool, and with as many annotators as when listed (an item
        handed out but not answered still waits; the head passes answered items only
        when a request walks over them)."""
        ids = self.queue_items(project, schema, queue)
        if not ids:
            return set()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.queue_due(project, schema, queue), ids)
            pipe.hmget(keys.annotator_counts(project, schema), ids)
            for i in ids:
                pipe.hexists(keys.items(project), i)
            due, counts, *present = pipe.execute()
        return {
            i
            for i, listed, n, there in zip(ids, due, counts, present, strict=True)
            if there and listed is not None and listed == (n or b"0")
        }

    def save_quality(self, project: str, schema: str, doc: dict) -> None:
        self.redis.set(keys.quality(project, schema), json.dumps({**doc, "computed_at": now_iso()}))

    def quality(self, project: str, schema: str) -> dict | None:
        raw = self.redis.get(keys.quality(project, schema))
        return json.loads(raw) if raw is not None else None
