"""Gunicorn settings for the API: ``gunicorn -c python:service.gunicorn 'service:create_app()'``.

Command-line flags override these. Each worker freezes its start-up objects (Flask,
numpy, scikit-learn modules: hundreds of thousands of them) out of the garbage
collector's reach, so a full collection no longer walks them in the middle of a request.

The workers share one ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder when it is
unset), emptied at start, so ``GET /metrics`` from any of them counts them all; a worker
that exits has its live gauges dropped. Log lines, gunicorn's own included, go to stderr
in alrank's format (``ALRANK_LOG_FORMAT=json``: one JSON object a line); the access line
is the app's, which carries the request id.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

from workers.telemetry import configure_logging, handler

MADE_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MADE_METRICS_DIR:
    # set before any worker imports prometheus_client, which reads it once
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="alrank-metrics-")

bind = os.environ.get("ALRANK_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("ALRANK_API_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("ALRANK_API_THREADS", "8"))
accesslog = None  # the app logs each request, with its id (service.telemetry)
graceful_timeout = 10  # seconds in-flight requests get on SIGTERM (alrank serve waits this long)


class AlrankLogger(Logger):
    """gunicorn's logger, writing in alrank's format."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for old in list(log.handlers):
                log.removeHandler(old)
            log.addHandler(handler())


logger_class = AlrankLogger


def on_starting(server) -> None:
    """Start the metrics afresh, and bring data of an earlier key layout to the current one
    before any request is served (the workers do the same when they start, whichever comes
    first)."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink(missing_ok=True)
    from redis import Redis
    from redis.exceptions import RedisError

    from workers.store.migrate import migrate

    try:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        with Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as conn:
            migrate(conn)
    except RedisError as exc:  # Redis not up yet: the workers migrate when they start
        server.log.warning("could not check the key layout: %s", exc)


def post_worker_init(worker) -> None:
    configure_logging()
    gc.collect()
    gc.freeze()


def on_exit(server) -> None:
    if MADE_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
