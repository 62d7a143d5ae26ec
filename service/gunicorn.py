"""Gunicorn settings for the API: ``gunicorn -c python:service.gunicorn 'service:create_app()'``.

Command-line flags override these. Each worker freezes its start-up objects (Flask,
numpy, scikit-learn modules: hundreds of thousands of them) out of the garbage
collector's reach, so a full collection no longer walks them in the middle of a request.
"""

from __future__ import annotations

import gc
import os

bind = os.environ.get("ALRANK_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("ALRANK_API_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("ALRANK_API_THREADS", "8"))
accesslog = "-"
graceful_timeout = 10  # seconds in-flight requests get on SIGTERM (alrank serve waits this long)


def on_starting(server) -> None:
    """Bring data of an earlier key layout to the current one before any request is served
    (the workers do the same when they start, whichever comes first)."""
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
    gc.collect()
    gc.freeze()
