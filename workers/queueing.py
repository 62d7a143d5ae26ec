"""Enqueueing retrain-and-rank jobs, with triggers coalesced per schema.

While a job for a schema waits in the queue, further triggers join it. While one runs,
the first further trigger queues one follow-up that waits for it; later triggers join
the follow-up. A burst of labels never piles up jobs.

The markers are checked against RQ before each claim: a job that is no longer waiting or
running (it failed, or Redis lost it) is forgotten, so a dead job never leaves a schema's
triggers joining something that will not run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus

from workers import defaults
from workers.store import Store
from workers.telemetry import job_meta, record_labels

JOB_FUNCTION = "workers.jobs.refresh_schema"

_PENDING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED}


def labels_call_for_retrain(
    al: dict, since: int, labelled: int, new: int, has_model: Callable[[], bool]
) -> bool:
    """The retrain rule: ``update_frequency`` labels since the last trigger, or the labels
    that first reach ``min_instances_for_training`` while the schema has no model yet.

    ``since`` counts labels since the last trigger (the store keeps the counter and a trigger
    resets it), ``labelled`` the items with a label, ``new`` the labels just stored.
    ``has_model`` is asked only where the answer depends on it: most label uploads are
    spared the read."""
    if since >= al["update_frequency"]:
        return True
    first_enough = labelled >= al["min_instances_for_training"] > labelled - new
    return first_enough and not has_model()


def job_status(queue: Queue, job_id: str) -> JobStatus | None:
    """The job's status in RQ; None where RQ does not know it."""
    try:
        return Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer).get_status()
    except NoSuchJobError:
        return None


def job_pending(queue: Queue, job_id: str) -> bool:
    """Whether RQ will still run (or is running) the job."""
    return job_status(queue, job_id) in _PENDING


def request_refresh(
    store: Store, queue: Queue, project: str, schema: str, reason: str, covered: int | None = None
) -> str:
    """Make sure a job will bring the schema's ranking up to date; returns that job's id.

    ``covered`` is the count of labels since the last trigger that called for it (None: a
    trigger that covers every label, such as an upload or ``POST .../train``)."""
    for marker, job_id in store.job_markers(project, schema).items():
        status = job_status(queue, job_id)
        if status in _PENDING:
            continue
        if status is None and store.claimed_lately(project, schema, job_id):
            continue  # claimed by another request a moment ago, on its way to RQ
        store.forget_job(project, schema, marker, job_id)
    action, job_id, depends_on = store.claim_trigger(project, schema, uuid.uuid4().hex)
    store.reset_since(project, schema, covered)
    if action != "enqueue":
        return job_id
    try:
        queue.enqueue_call(
            JOB_FUNCTION,
            args=(project, schema),
            job_id=job_id,
            timeout=defaults.JOB_TIMEOUT,
            retry=Retry(max=defaults.JOB_RETRIES),
            result_ttl=defaults.JOB_RESULT_TTL,
            failure_ttl=defaults.JOB_RESULT_TTL,
            depends_on=Dependency(jobs=[depends_on], allow_failure=True) if depends_on else None,
            meta={"project": project, "schema": schema, "reason": reason, **job_meta()},
            description=f"refresh {project}/{schema} ({reason})",
        )
    except Exception:
        store.unclaim_trigger(project, schema, job_id)
        raise
    return job_id


def store_labels(
    store: Store, queue: Queue, project: dict, labels: list[dict], source: str = "api"
) -> tuple[int, dict[str, str]]:
    """Store checked labels (``item``, ``schema``, ``value``, ``annotator``), one schema at a
    time, and queue a retrain for each active schema the retrain rule calls for; returns the
    labels new to their item and annotator, and per schema the job triggered. ``source``
    (api, label_studio, potato) is what the labels count under in the metrics."""
    from workers.settings import active_learning, active_schemas

    by_schema: dict[str, list[dict]] = {}
    for label in labels:
        by_schema.setdefault(label["schema"], []).append(label)
    al = active_learning(project)
    active = active_schemas(project)
    name = project["name"]
    new_total, jobs = 0, {}
    for schema, group in by_schema.items():
        new, since, labelled = store.upsert_labels(name, schema, group, al["min_annotations_per_instance"])
        new_total += new
        record_labels(store.redis, source, len(group))

        def has_model(schema: str = schema) -> bool:
            return store.latest_model(name, schema) is not None

        if schema in active and labels_call_for_retrain(al, since, labelled, new, has_model):
            jobs[schema] = request_refresh(store, queue, name, schema, f"{since} new labels", since)
    return new_total, jobs
