"""API key records: one global hash from key id to record (one round trip a request), and
each project's set of its key ids."""

from __future__ import annotations

import json

from redis import Redis

from workers.exceptions import NotFound
from workers.store import keys
from workers.store._codec import now_iso, text


class ApiKeys:
    redis: Redis

    def save_key(self, project: str, key_id: str, record: dict) -> dict:
        """Store a key's record (its hashed secret included) for ``project``."""
        record = {**record, "id": key_id, "project": project}
        record.setdefault("created_at", now_iso())
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.api_keys(), key_id, json.dumps(record))
        pipe.sadd(keys.project_keys(project), key_id)
        pipe.execute()
        return record

    def count_request(self, key_id: str, window: int, seconds: int) -> int:
        """Count one request of a key in a fixed window; returns the window's count so far."""
        key = keys.rate_window(key_id, window)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, seconds + 1)
        count, _ = pipe.execute()
        return int(count)

    def key_record(self, key_id: str) -> dict | None:
        raw = self.redis.hget(keys.api_keys(), key_id)
        return json.loads(raw) if raw is not None else None

    def project_key(self, project: str, key_id: str) -> dict:
        record = self.key_record(key_id)
        if record is None or record["project"] != project:
            raise NotFound(f"no key {key_id!r} in project {project!r}")
        return record

    def list_keys(self, project: str) -> list[dict]:
        ids = sorted(text(k) for k in self.redis.smembers(keys.project_keys(project)))
        if not ids:
            return []
        raws = self.redis.hmget(keys.api_keys(), ids)
        return [json.loads(r) for r in raws if r is not None]

    def revoke_key(self, project: str, key_id: str) -> None:
        self.project_key(project, key_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(keys.api_keys(), key_id)
        pipe.srem(keys.project_keys(project), key_id)
        pipe.execute()
