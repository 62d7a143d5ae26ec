"""A project's Potato connection: its webhook secret's nonce, the feed's settings and what
was given to Potato; and the claims that keep one sync job of a kind at a time, which the
Label Studio and Potato jobs share."""

from __future__ import annotations

import json
import secrets

from redis import Redis

from workers.store import keys
from workers.store._codec import text


class SyncJobs:
    redis: Redis

    def claim_sync_job(self, project: str, kind: str, seconds: int) -> bool:
        """True for the first caller while no job of this kind is queued for the project; the
        job gives the claim back when it starts (``release_sync_job``)."""
        return bool(self.redis.set(keys.sync_job(project, kind, "queued"), 1, nx=True, ex=seconds))

    def release_sync_job(self, project: str, kind: str) -> None:
        self.redis.delete(keys.sync_job(project, kind, "queued"))

    def sync_job_running(self, project: str, kind: str, job_id: str | None, seconds: int = 0) -> str | None:
        """The id of the running job of this kind; with ``job_id``, record it as running (for
        ``seconds`` at most), or with ``job_id=""`` forget it. A job queued while another of
        its kind runs waits for it."""
        key = keys.sync_job(project, kind, "running")
        if job_id:
            self.redis.set(key, job_id, ex=seconds)
        elif job_id == "":
            self.redis.delete(key)
        running = self.redis.get(key)
        return text(running) if running is not None else None


class PotatoLinks:
    redis: Redis

    def potato_nonce(self, project: str) -> str:
        """The nonce the project's Potato webhook secret is derived from, made on first use."""
        self.redis.hsetnx(keys.potato(project), "nonce", secrets.token_hex(8))
        return text(self.redis.hget(keys.potato(project), "nonce") or b"")

    def forget_potato(self, project: str) -> None:
        """A new webhook secret; the feed's settings and what was given stay."""
        self.redis.hdel(keys.potato(project), "nonce")

    def potato(self, project: str) -> dict:
        raw = self.redis.hgetall(keys.potato(project))
        out = {text(k): text(v) for k, v in raw.items()}
        for name in ("settings", "feed"):
            if name in out:
                out[name] = json.loads(out[name])
        return out

    def save_potato(self, project: str, /, **fields) -> None:
        self.redis.hset(keys.potato(project), mapping={k: json.dumps(v) for k, v in fields.items()})

    def next_potato_file(self, project: str) -> int:
        return int(self.redis.hincrby(keys.potato(project), "files", 1))

    def potato_given(self, project: str, ids: list[str]) -> list[bool]:
        return [bool(v) for v in self.redis.smismember(keys.potato_given(project), ids)] if ids else []

    def potato_gave(self, project: str, ids: list[str]) -> None:
        if ids:
            self.redis.sadd(keys.potato_given(project), *ids)
