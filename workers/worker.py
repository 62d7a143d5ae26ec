"""The ``alrank worker`` entry point: an RQ worker with the heavy libraries preloaded.

numpy, scipy and scikit-learn are imported once here, before RQ forks a work horse per
job, so each job starts without paying for the imports.
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy  # noqa: F401  (preloaded before fork)
import scipy.sparse  # noqa: F401
import sklearn.feature_extraction.text
import sklearn.linear_model  # noqa: F401
from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

import workers.jobs
import workers.simulations  # noqa: F401
from workers import defaults

QUEUES = (defaults.QUEUE_NAME, defaults.SIMULATION_QUEUE_NAME)
"""Queues a worker takes jobs from, in priority order: rankings before simulations."""


def make_queue(conn: Redis, name: str = defaults.QUEUE_NAME) -> Queue:
    return Queue(name, connection=conn, serializer=JSONSerializer)


def run_worker(
    redis_url: str, burst: bool = False, name: str | None = None, queues: tuple[str, ...] = QUEUES
) -> bool:
    conn = Redis.from_url(redis_url)
    worker = Worker(
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
    logging.basicConfig(level=logging.INFO)
    run_worker(args.redis_url, burst=args.burst, name=args.name, queues=queues)


if __name__ == "__main__":
    main()
