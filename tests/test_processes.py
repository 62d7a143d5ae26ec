"""The commands docker-compose runs, as local processes: gunicorn on the app factory and
the worker entry point, against a real Redis server, driven through one loop over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import requests as http
import yaml
from procs import ADMIN_KEY, answers, free_port, terminate, wait_until
from sklearn.datasets import load_breast_cancer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compose_command(service: str) -> list[str]:
    with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as f:
        return list(yaml.safe_load(f)["services"][service]["command"])


def local(command: list[str]) -> list[str]:
    """A compose command run from this environment's interpreter."""
    if command[0] == "gunicorn":
        return [sys.executable, "-m", "gunicorn", *command[1:]]
    if command[0] == "alrank":
        exe = shutil.which("alrank", path=os.path.dirname(sys.executable))
        return [exe, *command[1:]] if exe else [sys.executable, "-m", "service.cli", *command[1:]]
    return command


@pytest.fixture
def stack(redis_conn, redis_url):
    port = free_port()
    api_cmd = [a.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for a in compose_command("api")]
    env = {**os.environ, "REDIS_URL": redis_url, "ALRANK_ADMIN_KEY": ADMIN_KEY}
    procs = [
        subprocess.Popen(local(api_cmd), env=env, cwd=ROOT),
        subprocess.Popen(local(compose_command("worker")), env=env, cwd=ROOT),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/healthz"), 30, "gunicorn to answer")
        yield base
    finally:
        terminate(procs)


def test_loop_through_gunicorn_and_worker(stack):
    base = stack
    requests = http_as_admin()
    wait_until(lambda: requests.get(base + "/readyz").status_code == 200, 30, "a worker")
    x, y = load_breast_cancer(return_X_y=True)
    names = ["malignant", "benign"]
    body = {
        "name": "cancer",
        "schemas": [{"name": "diagnosis", "labels": names}],
        "active_learning": {"min_instances_for_training": 20, "update_frequency": 20, "eval_fraction": 0.0},
    }
    assert requests.post(base + "/v1/projects", json=body).status_code == 201
    items = [{"id": f"c{i}", "vector": row.tolist()} for i, row in enumerate(x)]
    assert requests.post(base + "/v1/projects/cancer/items", json={"items": items}).status_code == 200

    def ranked():
        p = requests.get(base + "/v1/projects/cancer").json()
        return p["counts"]["diagnosis"]["ranking"]

    wait_until(ranked, 60, "the cold-start ranking")
    batch = requests.get(
        base + "/v1/projects/cancer/next", params={"schema": "diagnosis", "annotator": "ann", "size": 20}
    ).json()
    assert batch["strategy"] == "cold_start" and len(batch["items"]) == 20
    labels = [
        {"item": it["id"], "schema": "diagnosis", "value": names[y[int(it["id"][1:])]], "annotator": "ann"}
        for it in batch["items"]
    ]
    r = requests.post(base + "/v1/projects/cancer/labels", json={"labels": labels}).json()
    job = r["training_jobs"]["diagnosis"]

    status = wait_until(
        lambda: (s := requests.get(f"{base}/v1/jobs/{job}").json())["status"] in ("finished", "failed") and s,
        60,
        "the training job",
    )
    assert status["status"] == "finished", status
    batch = requests.get(
        base + "/v1/projects/cancer/next", params={"schema": "diagnosis", "annotator": "ann", "size": 5}
    ).json()
    assert batch["model_version"] == 1 and batch["strategy"] == "diverse_uncertainty"
    assert not {it["id"] for it in batch["items"]} & {lab["item"] for lab in labels}


def http_as_admin() -> http.Session:
    session = http.Session()
    session.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    return session
