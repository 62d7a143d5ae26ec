"""Enqueueing retrain-and-rank jobs, with triggers coalesced per schema.

While a job for a schema waits in the queue, further triggers join it. While one runs,
the first further trigger queues one follow-up that waits for it; later triggers join
the follow-up. A burst of labels never piles up jobs.
"""

from __future__ import annotations

import uuid

from rq import Queue
from rq.job import Dependency

from workers import defaults
from workers.store import Store

JOB_FUNCTION = "workers.jobs.refresh_schema"


def request_refresh(store: Store, queue: Queue, project: str, schema: str, reason: str) -> str:
    """Make sure a job will bring the schema's ranking up to date; returns that job's id."""
    action, job_id, depends_on = store.claim_trigger(project, schema, uuid.uuid4().hex)
    store.reset_since(project, schema)
    if action != "enqueue":
        return job_id
    try:
        queue.enqueue_call(
            JOB_FUNCTION,
            args=(project, schema),
            job_id=job_id,
            timeout=defaults.JOB_TIMEOUT,
            result_ttl=defaults.JOB_RESULT_TTL,
            failure_ttl=defaults.JOB_RESULT_TTL,
            depends_on=Dependency(jobs=[depends_on], allow_failure=True) if depends_on else None,
            meta={"project": project, "schema": schema, "reason": reason},
            description=f"refresh {project}/{schema} ({reason})",
        )
    except Exception:
        store.unclaim_trigger(project, schema, job_id)
        raise
    return job_id
