"""RQ job functions: bring a schema's ranking up to date (:mod:`workers.refresh`).

Jobs take plain values (project and schema names), load their state from Redis, and are
idempotent: a run whose inputs (pool, labels, settings) match the published ranking's does
nothing, and every random choice is seeded from those inputs.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from workers import potato_feed
from workers.exceptions import InvalidInput, NotFound
from workers.features.files import feature_cache
from workers.label_studio.sync import after_publish
from workers.queueing import request_refresh
from workers.refresh import refresh
from workers.settings import find_schema
from workers.store import Store
from workers.telemetry import record_job

log = logging.getLogger(__name__)


def _report(stage: str, fraction: float) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = {"stage": stage, "fraction": round(fraction, 3)}
        job.save_meta()


def _follow_up(store: Store, project_name: str, schema_name: str) -> None:
    """Queue the job that carries on from the features a timed-out job left in the cache.

    Only a job that saved some of its work asks for one, so a job that cannot get anywhere
    within ``JOB_TIMEOUT`` fails once instead of running again and again."""
    job = get_current_job()
    if job is None:
        return
    try:
        queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
        request_refresh(store, queue, project_name, schema_name, "features unfinished at the job timeout")
    except RedisError:
        log.exception("could not queue the follow-up job for %s/%s", project_name, schema_name)


def refresh_schema(project_name: str, schema_name: str) -> dict:
    """The RQ entry point: retrain and re-rank one schema of one project."""
    job = get_current_job()
    conn: Redis = job.connection if job is not None else Redis()
    store = Store(conn)
    job_id = job.id if job is not None else "inline"
    store.job_started(project_name, schema_name, job_id)
    try:
        try:
            project = store.get_project(project_name)
            find_schema(project, schema_name)
        except (NotFound, InvalidInput) as exc:
            # the project or schema went away while the job waited: nothing left to rank
            record_job(conn, "refresh", "skipped")
            return {"status": "skipped", "reason": str(exc)}
        cache = feature_cache(store, project_name)
        queue = Queue(job.origin, connection=conn, serializer=JSONSerializer) if job is not None else None
        owner = job.id if job is not None else None
        try:
            result = refresh(store, project_name, schema_name, _report, cache, queue, owner)
        except JobTimeoutException:
            # a job out of time that saved some features queues one that carries on
            if cache.checkpoints:
                _follow_up(store, project_name, schema_name)
            _fail(job, "JobTimeoutException: the job ran out of time")
            record_job(conn, "refresh", "timed_out")
            raise
        except Exception as exc:
            # the job fails and says why; the ranking in service stays, and the next trigger
            # (labels, an upload, POST .../train) tries again
            _fail(job, f"{type(exc).__name__}: {exc}")
            record_job(conn, "refresh", "failed")
            log.warning("refresh of %s/%s failed: %s: %s", project_name, schema_name, type(exc).__name__, exc)
            raise
        record_job(conn, "refresh", result["status"], result.get("stage_seconds"))
        log.info(
            "refresh of %s/%s: %s in %.2f s",
            project_name,
            schema_name,
            result["status"],
            result.get("seconds", 0.0),
            extra={"project": project_name, "schema": schema_name, "result": result},
        )
        if result["status"] == "published":
            _tell_tools(store, conn, project_name, schema_name)
        return result
    finally:
        store.job_ended(project_name, schema_name, job_id)


def _tell_tools(store: Store, conn: Redis, project_name: str, schema_name: str) -> None:
    """Queue the push of a new ranking to a connected Label Studio; a failure there never
    fails the ranking, which is already served."""
    for tool, hook in (("Label Studio", after_publish), ("Potato", potato_feed.after_publish)):
        try:
            hook(store, conn, project_name, schema_name)
        except Exception:
            log.exception("could not queue the %s push for %s/%s", tool, project_name, schema_name)


def _fail(job, reason: str) -> None:
    """Record why the job failed; the ranking in service stays, and the next trigger
    (labels, an upload, POST .../train) tries again."""
    if job is None:
        return
    job.meta["error"] = reason
    job.save_meta()
    # retries are for lost workers: the same inputs would fail the same way, and a job out
    # of time that saved some features has queued its own follow-up
    job.retries_left = 0
