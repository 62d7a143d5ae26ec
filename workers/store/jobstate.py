"""Coalescing retrain triggers: the job waiting and the job running, per schema; and the
lock that lets one refresh of a schema run at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import LockError, RedisError, WatchError

from workers import defaults
from workers.store import keys
from workers.store._codec import text
from workers.store.scripts import Scripts


class JobState:
    redis: Redis
    scripts: Scripts

    def claim_trigger(self, project: str, schema: str, job_id: str) -> tuple[str, str, str]:
        """Record a retrain request: ('enqueue', id, depends_on) or ('coalesced', id, '')."""
        action, jid, dep = self.scripts.claim_trigger(
            keys=[keys.jobstate(project, schema)], args=[job_id, defaults.JOB_STATE_TTL, time.time()]
        )
        return action.decode(), jid.decode(), dep.decode()

    def job_started(self, project: str, schema: str, job_id: str) -> None:
        self.scripts.job_started(keys=[keys.jobstate(project, schema)], args=[job_id, defaults.JOB_STATE_TTL])

    def job_ended(self, project: str, schema: str, job_id: str) -> None:
        self.scripts.job_ended(keys=[keys.jobstate(project, schema)], args=[job_id])

    def unclaim_trigger(self, project: str, schema: str, job_id: str) -> None:
        """Undo a claim whose job could not be enqueued."""
        self.forget_job(project, schema, "queued", job_id)

    def job_markers(self, project: str, schema: str) -> dict[str, str]:
        """The schema's ``queued`` and ``running`` job ids, where set."""
        found = {text(k): text(v) for k, v in self.redis.hgetall(keys.jobstate(project, schema)).items()}
        return {m: found[m] for m in ("queued", "running") if m in found}

    def claimed_lately(self, project: str, schema: str, job_id: str) -> bool:
        """Whether ``job_id`` is the queued job and was claimed under ``CLAIM_GRACE_SECONDS``
        ago: it may be on its way to RQ, which does not know it yet."""
        queued, at = self.redis.hmget(keys.jobstate(project, schema), ["queued", "claimed_at"])
        if queued is None or text(queued) != job_id or at is None:
            return False
        return time.time() - float(at) < defaults.CLAIM_GRACE_SECONDS

    def forget_job(self, project: str, schema: str, marker: str, job_id: str) -> None:
        """Clear ``marker`` if it still names ``job_id`` (a job that will not run)."""
        self.scripts.forget_job(keys=[keys.jobstate(project, schema)], args=[marker, job_id])

    @contextmanager
    def refresh_lock(
        self, project: str, schema: str, wait: float = defaults.JOB_TIMEOUT, owner: str | None = None
    ) -> Iterator[None]:
        """Hold the schema's refresh lock for the block, waiting up to ``wait`` seconds for it.

        Coalescing keeps one job queued and one running per schema, but a job RQ runs
        again (its worker lost) or one started as another's dependency failed can still meet
        a refresh in progress. Two at once would race to publish, and the later version
        could be trained on an older snapshot of the labels. So a refresh waits for the one
        in progress and then reads the labels anew. The lock lives ``REFRESH_LOCK_SECONDS``
        and a thread renews it while the block runs: a killed holder frees it soon.

        ``owner`` (the job's id) names the holder. RQ runs a job again only once it has
        found the run before dead (its work horse killed, or its heartbeat lapsed), so a
        lock that a run of the same job left behind is taken over at once instead of
        waited out."""
        name = keys.refresh_lock(project, schema)
        token = None
        if owner is not None:
            token = f"{owner}/{uuid.uuid4().hex}"
            self._free_if_held_by(name, owner)
        lock = self.redis.lock(
            name,
            timeout=defaults.REFRESH_LOCK_SECONDS,
            sleep=0.1,
            blocking_timeout=wait,
            thread_local=False,
        )
        if not lock.acquire(token=token):
            raise TimeoutError(f"{project}/{schema}: another refresh held the lock for {wait:.0f} s")
        done = threading.Event()

        def renew() -> None:
            while not done.wait(defaults.REFRESH_LOCK_SECONDS / 3):
                try:
                    lock.extend(defaults.REFRESH_LOCK_SECONDS, replace_ttl=True)
                except (LockError, RedisError):
                    return  # lost it (Redis gone or the lock expired): the refresh goes on

        renewer = threading.Thread(target=renew, name="refresh-lock", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            try:
                lock.release()
            except (LockError, RedisError):
                pass  # it expired meanwhile: whoever holds it now keeps it

    def _free_if_held_by(self, name: str, owner: str) -> None:
        """Delete the lock ``name`` if an earlier run of job ``owner`` holds it."""
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(name)
                held = pipe.get(name)
                if held is not None and text(held).startswith(owner + "/"):
                    pipe.multi()
                    pipe.delete(name)
                    pipe.execute()
            except WatchError:
                pass  # it changed hands meanwhile: wait for it as for any other holder
