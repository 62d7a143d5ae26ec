"""The pool: items' documents and vectors, the pool's generation, its cached features."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from redis import Redis

from workers.exceptions import NotFound
from workers.store import keys
from workers.store._codec import raw

UPSERT_CHUNK = 10_000
"""Items a command of an upload writes at most."""


class Items:
    redis: Redis

    def upsert_items(self, project: dict, items: list[dict]) -> dict:
        """Insert or replace items; returns counts of created and updated items.

        One command per key and chunk, not per item: a hash set with every document, a
        sorted-set add with every id, the vectors set or cleared, in one transaction. (The
        API refuses an upload that repeats an id; here the last of them would win.)"""
        p = project["name"]
        last = {item["id"]: item for item in items}
        pipe = self.redis.pipeline(transaction=True)
        ids = list(last)
        new_docs = []  # where each chunk's count of new documents is among the replies
        for start in range(0, len(ids), UPSERT_CHUNK):
            chunk = [last[i] for i in ids[start : start + UPSERT_CHUNK]]
            docs = {
                item["id"]: json.dumps({"text": item.get("text"), "metadata": item.get("metadata") or {}})
                for item in chunk
            }
            new_docs.append(len(pipe.command_stack))
            pipe.hset(keys.items(p), mapping=docs)
            pipe.zadd(keys.item_index(p), dict.fromkeys(docs, 0))
            vectors = {
                item["id"]: np.asarray(item["vector"], dtype=np.float32).tobytes()
                for item in chunk
                if item.get("vector") is not None
            }
            if vectors:
                pipe.hset(keys.vectors(p), mapping=vectors)
            cleared = [item["id"] for item in chunk if item.get("vector") is None]
            if cleared:
                pipe.hdel(keys.vectors(p), *cleared)
        pipe.incr(keys.generation(p))
        results = pipe.execute()
        created = sum(int(results[k]) for k in new_docs)
        return {"created": created, "updated": len(items) - created}

    def delete_item(self, project: dict, item_id: str) -> None:
        p = project["name"]
        if not self.redis.hexists(keys.items(p), item_id):
            raise NotFound(f"no item {item_id!r} in project {p!r}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.items(p), item_id)
        pipe.hdel(keys.vectors(p), item_id)
        pipe.zrem(keys.item_index(p), item_id)
        for schema in project["schemas"]:
            s = schema["name"]
            pipe.hdel(keys.labels(p, s), item_id)
            pipe.hdel(keys.label_times(p, s), item_id)
            pipe.zrem(keys.labelled_index(p, s), item_id)
            pipe.hdel(keys.annotator_counts(p, s), item_id)
            pipe.incr(keys.label_revision(p, s))
            pipe.zrem(keys.leases(p, s), item_id)
            pipe.hdel(keys.owners(p, s), item_id)
        pipe.incr(keys.generation(p))
        pipe.execute()

    def item_count(self, project: str) -> int:
        return int(self.redis.hlen(keys.items(project)))

    def get_items(self, project: str, ids: list[str]) -> list[dict | None]:
        if not ids:
            return []
        raws = self.redis.hmget(keys.items(project), ids)
        return [json.loads(r) if r is not None else None for r in raws]

    def iter_items(self, project: str) -> Iterator[tuple[str, dict]]:
        for key, doc in self.redis.hscan_iter(keys.items(project), count=5000):
            yield key.decode(), json.loads(doc)

    def load_vectors(self, project: str, ids: list[str], dim: int | None) -> np.ndarray | None:
        """One float32 row per id, zeros where an item has no vector; None when none has."""
        if not dim:
            return None
        key = keys.vectors(project)
        if not self.redis.hlen(key):
            return None
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            for i, blob in enumerate(self.redis.hmget(key, chunk)):
                if blob is not None:
                    out[start + i] = np.frombuffer(raw(blob), dtype=np.float32)
        return out

    def feature_rows(self, project: str, part: str) -> bytes | None:
        """The cached rows of one feature part of the pool (see ``workers.features``)."""
        blob = self.redis.get(keys.features(project, part))
        return raw(blob) if blob is not None else None

    def save_feature_rows(self, project: str, part: str, blob: bytes) -> None:
        self.redis.set(keys.features(project, part), blob)

    def drop_feature_rows(self, project: str, part: str) -> None:
        """Forget one part's rows here (they moved to the feature directory)."""
        self.redis.unlink(keys.features(project, part))

    def pool_generation(self, project: str) -> int:
        return int(self.redis.get(keys.generation(project)) or 0)
