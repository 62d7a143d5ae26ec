"""Coalescing retrain triggers: the job waiting and the job running, per schema."""

from __future__ import annotations

from redis import Redis

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
            keys=[keys.jobstate(project, schema)], args=[job_id, defaults.JOB_STATE_TTL]
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
        return {text(k): text(v) for k, v in self.redis.hgetall(keys.jobstate(project, schema)).items()}

    def forget_job(self, project: str, schema: str, marker: str, job_id: str) -> None:
        """Clear ``marker`` if it still names ``job_id`` (a job that will not run)."""
        self.scripts.forget_job(keys=[keys.jobstate(project, schema)], args=[marker, job_id])
