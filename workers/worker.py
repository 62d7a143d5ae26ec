"""The ``alrank worker`` entry point: an RQ worker with the heavy libraries preloaded.

numpy, scipy and scikit-learn are imported once here, before RQ forks a work horse per
job, so each job starts without paying for the imports.

:class:`AlrankWorker` makes a lost worker cheap. RQ keeps a running job's entry in its
started registry alive by heartbeats; when they stop (the worker was killed, its container
died), any worker's maintenance pass finds the entry expired and enqueues the job again
(``Retry``). RQ's own timings make that take up to ten minutes; here a heartbeat lapses
after ``HEARTBEAT_GRACE`` seconds, idle workers run maintenance every
``MAINTENANCE_SECONDS``, and a work horse dies with its worker instead of running on as an
orphan.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal

import numpy  # noqa: F401  (preloaded before fork)
import scipy.sparse  # noqa: F401
import sklearn.feature_extraction.text
import sklearn.linear_model  # noqa: F401
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

import workers.jobs
import workers.simulation.job  # noqa: F401
from workers import defaults
from workers.store.migrate import migrate
from workers.telemetry import configure_logging, job_context

QUEUES = (defaults.QUEUE_NAME, defaults.SYNC_QUEUE_NAME, defaults.SIMULATION_QUEUE_NAME)
"""Queues a worker takes jobs from, in priority order: rankings, then keeping connected
tools in step, then simulations."""


log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class AlrankQueue(Queue):
    """RQ's queue with a short-lived lock on its registries' cleaning.

    RQ takes the lock for 899 s and frees it when the cleaning is done, a matter of
    milliseconds. A worker killed inside that window would leave it held, and no worker
    would find and retry abandoned jobs for 15 minutes; here it lapses after
    ``CLEANING_LOCK_SECONDS``."""

    def acquire_maintenance_lock(self) -> bool:
        return bool(
            self.connection.set(self.registry_cleaning_key, 1, nx=True, ex=defaults.CLEANING_LOCK_SECONDS)
        )


def make_queue(conn: Redis, name: str = defaults.QUEUE_NAME) -> Queue:
    return AlrankQueue(name, connection=conn, serializer=JSONSerializer)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` exits (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class AlrankWorker(Worker):
    """RQ's forking worker with short heartbeats, frequent maintenance, horses that die
    with it, and a registration that survives Redis losing its data."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", defaults.JOB_MONITORING_SECONDS)
        kwargs.setdefault("maintenance_interval", defaults.MAINTENANCE_SECONDS)
        kwargs.setdefault("worker_ttl", defaults.WORKER_TTL)
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()

    @property
    def dequeue_timeout(self) -> int:
        # an idle worker waits this long for a job before its next maintenance pass
        return min(super().dequeue_timeout, defaults.MAINTENANCE_SECONDS)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ allows 60 s beyond the monitoring interval, which is most of a lost job's delay
        interval: float = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + defaults.HEARTBEAT_GRACE

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        if pipeline is None and not self.connection.exists(self.key):
            # Redis came back empty (or lost this key): register again, or /readyz and RQ's
            # registries would never see this worker although it takes jobs
            log.warning("worker %s: registration lost (Redis restarted?); registering again", self.name)
            self.register_birth()
        super().heartbeat(timeout, pipeline)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        _die_with(self._worker_pid)
        # the horse's log lines carry the job's id and the id of the request that queued it
        with job_context(job.id, job.meta or {}):
            super().main_work_horse(job, queue)


def run_worker(
    redis_url: str, burst: bool = False, name: str | None = None, queues: tuple[str, ...] = QUEUES
) -> bool:
    conn = Redis.from_url(redis_url)
    migrate(conn)
    worker = AlrankWorker(
        [make_queue(conn, q) for q in queues], connection=conn, serializer=JSONSerializer, name=name
    )
    return worker.work(burst=burst, logging_level="INFO")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alrank worker", description=__doc__)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL"), help="Redis to work for (default: $REDIS_URL)"
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--name", default=None, help="worker name shown in RQ's registries")
    parser.add_argument(
        "--queues",
        default=",".join(QUEUES),
        help=f"queues to work on, in priority order (default: {','.join(QUEUES)}; "
        f"{defaults.QUEUE_NAME} alone keeps a worker for rankings only)",
    )
    args = parser.parse_args(argv)
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    unknown = set(queues) - set(QUEUES)
    if unknown or not queues:
        parser.error(f"--queues takes some of {','.join(QUEUES)}")
    if not args.redis_url:
        parser.error("set REDIS_URL or pass --redis-url")
    configure_logging()
    run_worker(args.redis_url, burst=args.burst, name=args.name, queues=queues)


if __name__ == "__main__":
    main()
