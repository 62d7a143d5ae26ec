"""Operating the service: ``GET /metrics`` for Prometheus, request ids, structured logs.

The first tests drive the app in process; the last runs gunicorn with two worker
processes and an RQ worker, as docker-compose does, and reads the metrics and the JSON logs
they write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from procs import ADMIN_KEY, ROOT, answers, free_port, terminate, wait_until
from prometheus_client.parser import text_string_to_metric_families


def samples(body: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text answer, by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def make_project(client, name: str = "ops", n: int = 60) -> str:
    body = {
        "name": name,
        "schemas": [{"name": "topic", "labels": ["a", "b"]}],
        "active_learning": {"min_instances_for_training": 4, "update_frequency": 4, "eval_fraction": 0.0},
    }
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201
    items = [{"id": f"i{i}", "text": f"{'alpha' if i % 2 else 'beta'} text number {i}"} for i in range(n)]
    assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code == 200
    return r.json["api_key"]["key"]


def label_batch(client, project: str, size: int = 8, **kwargs) -> list[dict]:
    r = client.get(f"/v1/projects/{project}/next?schema=topic&annotator=ann&size={size}", **kwargs)
    assert r.status_code == 200
    labels = [
        {"item": i["id"], "schema": "topic", "annotator": "ann", "value": "ab"[int(i["id"][1:]) % 2 == 0]}
        for i in r.json["items"]
    ]
    assert client.post(f"/v1/projects/{project}/labels", json={"labels": labels}, **kwargs).status_code == 200
    return labels


def test_metrics_move_as_labels_arrive_and_retrains_run(client, run_jobs):
    make_project(client)
    run_jobs()
    before = samples(client.get("/metrics").get_data(as_text=True))
    assert value(before, "alrank_projects") == 1
    assert value(before, "alrank_jobs_total", kind="refresh", outcome="published") == 1
    sent = label_batch(client, "ops")
    waiting = samples(client.get("/metrics").get_data(as_text=True))
    assert value(waiting, "alrank_labels_received_total", source="api") == len(sent)
    assert value(waiting, "alrank_labels_since_ranking", project="ops", schema="topic") == len(sent)
    assert value(waiting, "alrank_queue_jobs", queue="alrank") == 1

    # the API process's own counters live as long as the process: compare with before
    def served(found: dict) -> float:
        return sum(v for (name, _), v in found.items() if name == "alrank_items_served_total")

    assert served(waiting) - served(before) == len(sent)
    route = "/v1/projects/<project>/next"
    for name, labels in (
        ("alrank_http_requests_total", {"method": "GET", "route": route, "status": "200"}),
        ("alrank_http_request_duration_seconds_count", {"method": "GET", "route": route}),
    ):
        assert value(waiting, name, **labels) - value(before, name, **labels) == 1

    run_jobs()
    after = samples(client.get("/metrics").get_data(as_text=True))
    assert value(after, "alrank_jobs_total", kind="refresh", outcome="published") == 2
    assert value(after, "alrank_labels_since_ranking", project="ops", schema="topic") == 0
    assert value(after, "alrank_queue_jobs", queue="alrank") == 0
    trained = value(after, "alrank_refresh_stage_duration_seconds_count", stage="training")
    assert trained == 2
    assert value(after, "alrank_refresh_stage_duration_seconds_bucket", stage="training", le="+Inf") == 2
    assert 0 <= value(after, "alrank_ranking_age_seconds", project="ops", schema="topic") < 60


def test_a_failing_retrain_is_counted(client, run_jobs, monkeypatch):
    make_project(client)
    run_jobs()
    import workers.refresh

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(workers.refresh, "train", broken)
    label_batch(client, "ops")
    run_jobs()
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert value(found, "alrank_jobs_total", kind="refresh", outcome="failed") == 1
    assert value(found, "alrank_failed_jobs", queue="alrank") == 1


def test_per_project_series_are_bounded(app, client, run_jobs):
    app.config["METRICS_PROJECTS"] = 2
    for name in ("p1", "p2", "p3"):
        make_project(client, name, n=10)
    run_jobs()
    label_batch(client, "p3", size=4)  # p3 lags: it is named first
    found = samples(client.get("/metrics").get_data(as_text=True))
    named = {dict(labels)["project"] for (name, labels) in found if name == "alrank_labels_since_ranking"}
    assert len(named) == 2 and "p3" in named
    assert value(found, "alrank_projects") == 3
    assert value(found, "alrank_labels_since_ranking_max") == 4


def test_metrics_need_the_admin_key(client, anonymous):
    manager = make_project(client)
    assert anonymous.get("/metrics").status_code == 401
    r = anonymous.get("/metrics", headers={"Authorization": f"Bearer {manager}"})
    assert r.status_code == 403
    assert client.get("/metrics").status_code == 200


def test_metrics_can_be_turned_off(app, client):
    app.config["METRICS"] = False
    assert client.get("/metrics").status_code == 404


def test_request_id_is_taken_or_made_and_returned(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    wild = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["X-Request-ID"]
    assert wild != "bad id\twith spaces" and len(wild) == 32
    refused = client.get("/v1/projects", headers={"Authorization": "Bearer nope", "X-Request-ID": "r-401"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "r-401"


def test_the_request_id_follows_into_the_job_it_queued(client, redis_conn, run_jobs):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    make_project(client)
    run_jobs()  # a job queued by another request carries that request's id
    r = client.post("/v1/projects/ops/train?schema=topic", headers={"X-Request-ID": "trace-7"})
    assert r.status_code == 202, r.get_data(as_text=True)
    job = Job.fetch(r.json["job"], connection=redis_conn, serializer=JSONSerializer)
    assert job.meta["request_id"] == "trace-7"


def _json_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


@pytest.fixture
def two_workers(redis_conn, redis_url, tmp_path):
    """gunicorn with two worker processes and one RQ worker, logging JSON to files."""
    port = free_port()
    prom = tmp_path / "prom"
    prom.mkdir()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "ALRANK_ADMIN_KEY": ADMIN_KEY,
        "ALRANK_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
    }
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with open(api_log, "wb") as a, open(worker_log, "wb") as w:
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "--config=python:service.gunicorn"),
                    *(f"--bind=127.0.0.1:{port}", "--workers=2", "service:create_app()"),
                ],
                env=env,
                cwd=ROOT,
                stderr=a,
            ),
            subprocess.Popen([sys.executable, "-m", "workers.worker"], env=env, cwd=ROOT, stderr=w),
        ]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/healthz"), 30, "gunicorn to answer")
        yield base, prom, api_log, worker_log
    finally:
        terminate(procs)


class Http:
    """requests with the admin key, shaped like the Flask client the helpers take."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def call(self, method: str, path: str, json=None, headers=None):
        r = requests.request(
            method, self.base + path, json=json, headers={**self.headers, **(headers or {})}, timeout=30
        )
        r.json = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else None
        return r

    def get(self, path, headers=None):
        return self.call("GET", path, headers=headers)

    def post(self, path, json=None, headers=None):
        return self.call("POST", path, json=json, headers=headers)


def test_gunicorn_workers_count_together_and_logs_follow_the_request(two_workers, redis_conn):
    base, prom, api_log, worker_log = two_workers
    http = Http(base)
    make_project(http)
    wait_until(lambda: redis_conn.exists("alrank:{ops}:s:topic:ranking"), 60, "the first ranking")

    # concurrent requests until both API processes have answered some
    health = {"method": "GET", "route": "/healthz", "status": "200"}
    before = value(samples(http.get("/metrics").text), "alrank_http_requests_total", **health)
    sent = [0]
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(10):
            assert requests.get(base + "/healthz", timeout=10).status_code == 200
            with lock:
                sent[0] += 1

    def both_counted() -> bool:
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len({f.name.split("_")[-1] for f in prom.glob("counter_*.db")}) >= 2

    wait_until(both_counted, 60, "both gunicorn workers to count requests", every=0)
    found = samples(http.get("/metrics").text)
    assert value(found, "alrank_http_requests_total", **health) == before + sent[0]

    trace = f"trace-{uuid.uuid4().hex[:8]}"
    labels = label_batch(http, "ops", headers={"X-Request-ID": trace})

    def job_line() -> dict | None:
        for line in _json_lines(worker_log):
            if line.get("request_id") == trace and line.get("logger") == "workers.jobs":
                return line
        return None

    line = wait_until(job_line, 60, "the retrain's log line carrying the request id")
    assert line["job_id"] and line["message"].startswith("refresh of ops/topic: published")
    access = [
        x for x in _json_lines(api_log) if x.get("request_id") == trace and x["logger"] == "alrank.access"
    ]
    assert {x["route"] for x in access} == {"/v1/projects/<project>/next", "/v1/projects/<project>/labels"}

    def retrained():
        got = samples(http.get("/metrics").text)
        return got if value(got, "alrank_jobs_total", kind="refresh", outcome="published") >= 2 else None

    found = wait_until(retrained, 60, "the retrain to be counted")
    assert value(found, "alrank_labels_received_total", source="api") == len(labels)
    assert value(found, "alrank_workers") == 1
    assert value(found, "alrank_refresh_stage_duration_seconds_count", stage="training") >= 2
