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

import workers.jobs  # noqa: F401  (the job functions, imported before fork)
from workers import defaults


def make_queue(conn: Redis) -> Queue:
    return Queue(defaults.QUEUE_NAME, connection=conn, serializer=JSONSerializer)


def run_worker(redis_url: str, burst: bool = False, name: str | None = None) -> bool:
    conn = Redis.from_url(redis_url)
    worker = Worker([make_queue(conn)], connection=conn, serializer=JSONSerializer, name=name)
    return worker.work(burst=burst, logging_level="INFO")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alrank worker", description=__doc__)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL"), help="Redis to work for (default: $REDIS_URL)"
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--name", default=None, help="worker name shown in RQ's registries")
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("set REDIS_URL or pass --redis-url")
    logging.basicConfig(level=logging.INFO)
    run_worker(args.redis_url, burst=args.burst, name=args.name)


if __name__ == "__main__":
    main()
