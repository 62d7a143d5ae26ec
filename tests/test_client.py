"""The Python client and the ``alrank`` commands on it, against a running ``alrank serve``.

Every operation of ``openapi.yaml`` has a client method, and every method is called here
over HTTP; the CLI uploads 100,000 items with its progress bar, and carries on after
being killed halfway. Retries of 429 and 503 are checked against a server that answers
them on cue.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from flask import Flask, jsonify
from procs import ROOT, Serve, wait_until
from werkzeug.serving import make_server

from alrank.client import MAX_ITEMS_PER_REQUEST, ApiError, Client, Unreachable, chunked, retry_policy

SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))

OPERATIONS = {
    ("post", "/v1/projects"): "create_project",
    ("post", "/v1/projects/potato"): "create_project_from_potato",
    ("get", "/v1/projects"): "projects",
    ("get", "/v1/projects/{project}"): "project",
    ("patch", "/v1/projects/{project}"): "update_project",
    ("delete", "/v1/projects/{project}"): "delete_project",
    ("delete", "/v1/projects/{project}/label-studio"): "disconnect_label_studio",
    ("delete", "/v1/projects/{project}/potato"): "retire_potato_secret",
    ("post", "/v1/projects/{project}/keys"): "create_key",
    ("get", "/v1/projects/{project}/keys"): "keys",
    ("post", "/v1/projects/{project}/keys/{key_id}/rotate"): "rotate_key",
    ("delete", "/v1/projects/{project}/keys/{key_id}"): "revoke_key",
    ("post", "/v1/projects/{project}/items"): "upload_items",
    ("get", "/v1/projects/{project}/items/{item}"): "item",
    ("delete", "/v1/projects/{project}/items/{item}"): "delete_item",
    ("post", "/v1/projects/{project}/labels"): "push_labels",
    ("delete", "/v1/projects/{project}/labels/{schema}/{item}"): "delete_label",
    ("get", "/v1/projects/{project}/next"): "next",
    ("post", "/v1/projects/{project}/leases/release"): "release",
    ("get", "/v1/projects/{project}/ranking"): "ranking",
    ("post", "/v1/projects/{project}/predict"): "predict",
    ("post", "/v1/projects/{project}/train"): "train",
    ("get", "/v1/jobs/{job}"): "job",
    ("get", "/v1/projects/{project}/models"): "models",
    ("get", "/v1/projects/{project}/metrics"): "metrics",
    ("get", "/v1/projects/{project}/metrics.png"): "metrics_png",
    ("post", "/v1/simulations"): "simulate",
    ("get", "/v1/simulations/{sim}"): "simulation",
    ("delete", "/v1/simulations/{sim}"): "delete_simulation",
    ("get", "/v1/simulations/{sim}/{name}"): "simulation_file",
    ("get", "/v1/projects/{project}/items"): "items",
    ("get", "/v1/projects/{project}/labels"): "labels",
    ("get", "/v1/projects/{project}/labels.jsonl"): "export_labels",
    ("get", "/v1/projects/{project}/label-issues"): "label_issues",
    ("get", "/v1/projects/{project}/export"): "export_project",
    ("post", "/v1/projects/import"): "import_project",
    ("get", "/metrics"): "prometheus_metrics",
    ("get", "/healthz"): "health",
    ("get", "/readyz"): "ready",
}
"""Each operation of the API document, and the client method that makes it. Label Studio's
ML-backend calls (``/ls/...``) are Label Studio's to make, not a client's, and the pages
(``/v1/page``, ``/v1/projects/{project}/page``) are a browser's."""

WORDS = ["refund", "broken", "great", "late", "love", "slow", "cheap", "works"]


def test_alrank_help_lists_every_command_in_groups():
    """``alrank --help`` shows the service's commands and the client's, each under its
    group, with its help line."""
    from alrank.cli import COMMANDS

    shown = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    lines = shown.splitlines()
    for title in ("run the service:", "replay annotation on labelled data:", "talk to a running service"):
        assert any(line.startswith(title) for line in lines), title
    listed = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("  -")]
    assert listed == ["serve", "worker", "simulate", *COMMANDS]
    assert all(
        len(line.split(maxsplit=1)) == 2 for line in lines if line.split() and line.split()[0] in listed
    )


def test_every_operation_has_a_client_method():
    documented = {
        (method, path)
        for path, item in SPEC["paths"].items()
        if not path.startswith(("/ls/", "/potato/")) and not path.endswith("/page")
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    }
    assert documented == set(OPERATIONS)
    assert all(callable(getattr(Client, name, None)) for name in OPERATIONS.values())


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Serve(tmp_path_factory.mktemp("client") / "data")
    yield s
    s.close()


def texts(n: int, offset: int = 0) -> list[dict]:
    return [
        {"id": f"r{k}", "text": f"{WORDS[k % 8]} {WORDS[(k * 3) % 8]} order {k}"}
        for k in range(offset, offset + n)
    ]


def test_the_client_makes_every_call(service):
    admin = Client(service.base, service.admin_key)
    assert admin.health()["status"] == "ok" and admin.ready()["status"] == "ready"
    created = admin.create_project(
        {
            "name": "shop",
            "schemas": [{"name": "mood", "labels": ["pos", "neg"]}],
            "active_learning": {
                "min_instances_for_training": 4,
                "update_frequency": 4,
                "vectorizer_name": "tfidf",
            },
        }
    )
    al = Client(service.base, created["api_key"]["key"])  # the project's manager key from now on
    assert al.projects() == ["shop"]
    assert al.update_project("shop", lease_seconds=120)["lease_seconds"] == 120
    key = al.create_key("shop", "ana's laptop", annotators=["ana"])
    assert sorted(k["name"] for k in al.keys("shop")) == ["ana's laptop", "first key"]
    rotated = al.rotate_key("shop", key["id"])
    assert rotated["key"] != key["key"]
    ana = Client(service.base, rotated["key"])
    uploaded = al.upload_items("shop", texts(40))
    assert uploaded == {"created": 40, "updated": 0, "pool_size": 40}
    assert al.item("shop", "r3")["text"] == "late broken order 3"
    batch = ana.next("shop", schema="mood", annotator="ana", size=8)
    assert len(batch["items"]) == 8
    labels = [
        {
            "item": it["id"],
            "schema": "mood",
            "value": "pos" if int(it["id"][1:]) % 2 else "neg",
            "annotator": "ana",
        }
        for it in batch["items"]
    ]
    pushed = ana.push_labels("shop", labels)
    assert pushed["received"] == 8 and pushed["new"] == 8 and "mood" in pushed["training_jobs"]
    state = al.wait(pushed["training_jobs"]["mood"], timeout=60)
    assert state["status"] == "finished"
    assert ana.release("shop", "mood", "ana") == 0
    assert [it["id"] for it in al.items("shop")] == sorted(f"r{k}" for k in range(40))
    listed = list(al.labels("shop", schema="mood", annotator="ana"))
    assert sorted(x["item"] for x in listed) == sorted(x["item"] for x in labels)
    total, lines = al.export_labels("shop")
    assert total == 8 and sorted(json.loads(x)["item"] for x in lines) == sorted(x["item"] for x in labels)
    _, exported = al.export_project("shop")
    copy = admin.import_project(io.BytesIO(b"".join(exported)), name="shop-copy")
    assert copy["items"] == 40 and copy["labels"] == 8
    admin.delete_project("shop-copy")
    assert "alrank_labels_received_total" in admin.prometheus_metrics()
    ref = al.train("shop", "mood")
    seen: list[str] = []
    assert (
        al.wait(ref["job"], timeout=60, on_progress=lambda s: seen.append(s["status"]))["status"]
        == "finished"
    )
    assert seen[-1] == "finished"
    assert al.models("shop", "mood")[-1]["serving"] is True
    assert al.ranking("shop", "mood", limit=3)["items"][0]["rank"] >= 1
    assert al.metrics("shop", "mood")["schema"] == "mood"
    assert al.metrics_png("shop", "mood")[:8] == b"\x89PNG\r\n\x1a\n"
    al.delete_label("shop", "mood", labels[0]["item"], annotator="ana")
    assert al.item("shop", labels[0]["item"])["labels"]["mood"] == {}
    al.delete_item("shop", "r39")
    with pytest.raises(ApiError) as refused:
        al.item("shop", "r39")
    assert refused.value.status == 404 and "r39" in refused.value.detail
    more = [
        {"item": f"r{k}", "schema": "mood", "value": "pos" if k % 2 else "neg", "annotator": "ana"}
        for k in range(10, 30)
    ]
    assert ana.push_labels("shop", more)["received"] == 20  # a replay needs 10 labelled rows or more
    sim = al.simulate(
        {
            "source": {"project": "shop", "schema": "mood"},
            "budget": 6,
            "repeats": 1,
            "seed_size": 2,
            "loop": "seeded",
        }
    )
    wait_until(lambda: al.simulation(sim["id"])["status"] in ("finished", "failed"), 120, "the simulation")
    assert al.simulation(sim["id"])["status"] == "finished"
    assert b"strategy" in al.simulation_file(sim["id"], "curves.csv")
    al.delete_simulation(sim["id"])
    al.disconnect_label_studio("shop")
    secret = al.project("shop")["potato"]["webhook_secret"]
    al.retire_potato_secret("shop")
    assert al.project("shop")["potato"]["webhook_secret"] != secret
    al.revoke_key("shop", key["id"])
    with pytest.raises(ApiError) as revoked:
        ana.project("shop")
    assert revoked.value.status == 401
    admin.delete_project("shop")
    potato = admin.create_project_from_potato(
        "annotation_task_name: from potato\nannotation_schemes:\n"
        "  - {annotation_type: radio, name: mood, labels: [pos, neg]}\n"
        "active_learning: {random_sample_percent: 20, resolution_strategy: consensus}\n"
    )
    assert potato["name"] == "from-potato" and potato["active_learning"]["random_sample_percent"] == 0.2
    admin.delete_project("from-potato")
    assert admin.projects() == []


class Flaky:
    """A server that answers each request with the next status of a script."""

    def __init__(self, script: list[tuple[int, dict]]) -> None:
        self.script, self.seen = list(script), []
        app = Flask("flaky")

        @app.get("/healthz")
        def health():
            self.seen.append(time.monotonic())
            status, headers = self.script.pop(0) if self.script else (200, {})
            body = (
                {"status": "ok"}
                if status == 200
                else {"title": "busy", "detail": "try later", "status": status}
            )
            return jsonify(body), status, headers

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_429_and_503_are_retried_after_retry_after():
    flaky = Flaky([(429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})])
    try:
        assert Client(flaky.url).health() == {"status": "ok"}
        assert len(flaky.seen) == 3
        assert flaky.seen[1] - flaky.seen[0] >= 0.9 and flaky.seen[2] - flaky.seen[1] >= 0.9
        flaky.script = [(503, {"Retry-After": "0"})] * 5
        with pytest.raises(Unreachable):
            Client(flaky.url, retries=retry_policy(total=2, backoff=0)).health()
    finally:
        flaky.server.shutdown()


def test_bulk_uploads_are_cut_to_the_server_limits():
    small = list(chunked({"id": str(k), "text": "x"} for k in range(25_000)))
    assert [len(c) for c in small] == [MAX_ITEMS_PER_REQUEST, MAX_ITEMS_PER_REQUEST, 5_000]
    big = list(chunked({"id": str(k), "text": "é" * 50_000} for k in range(600)))
    assert all(len(json.dumps({"items": c}).encode()) < 32 * 1024 * 1024 for c in big) and len(big) > 1


def alrank(service, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ALRANK_URL": service.base, "ALRANK_API_KEY": key or service.admin_key}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_the_cli_runs_the_loop(service, tmp_path):
    project = tmp_path / "project.yaml"
    project.write_text(
        "name: cli\nschemas:\n  - name: mood\n    labels: [pos, neg]\n"
        "active_learning: {min_instances_for_training: 4, update_frequency: 4, vectorizer_name: tfidf}\n"
    )
    made = alrank(service, "projects", "create", str(project))
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]["key"]
    items = tmp_path / "items.csv"
    items.write_text("id,text,source\n" + "".join(f"{it['id']},{it['text']},shop\n" for it in texts(30)))
    up = alrank(service, "items", "upload", "cli", str(items), key=key)
    assert up.returncode == 0, up.stderr
    assert "30 created" in up.stdout and "30/30" in up.stderr
    assert Client(service.base, key).item("cli", "r1")["metadata"] == {"source": "shop"}
    batch = alrank(
        service, "next", "cli", "--schema", "mood", "--annotator", "ana", "--size", "6", "--json", key=key
    )
    ids = [it["id"] for it in json.loads(batch.stdout)["items"]]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"item": i, "schema": "mood", "value": "pos" if k % 2 else "neg", "annotator": "ana"})
            + "\n"
            for k, i in enumerate(ids)
        )
    )
    pushed = alrank(service, "labels", "push", "cli", str(labels), key=key)
    assert pushed.returncode == 0 and "6 labels sent, 6 new" in pushed.stdout
    trained = alrank(service, "train", "cli", "--schema", "mood", "--wait", key=key)
    assert trained.returncode == 0, trained.stderr
    assert "finished" in trained.stdout and "model version" in trained.stdout
    shown = alrank(service, "next", "cli", "--schema", "mood", "--annotator", "bo", key=key)
    assert shown.returncode == 0 and "items for bo" in shown.stdout
    png = tmp_path / "curve.png"
    metrics = alrank(service, "metrics", "cli", "--schema", "mood", "--png", str(png), key=key)
    assert metrics.returncode == 0 and "accuracy" in metrics.stdout.splitlines()[0]
    assert png.read_bytes()[:4] == b"\x89PNG"
    listed = alrank(service, "projects", "list", key=key)
    assert listed.stdout.split() == ["cli"]

    # labels out, and the whole project moved out and back in
    out = tmp_path / "labels-out.jsonl"
    exported = alrank(service, "labels", "export", "cli", "--out", str(out), key=key)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["item"] for r in rows) == sorted(ids) and "6/6" in exported.stderr
    assert all(r["text"] and r["annotator"] == "ana" and r["updated_at"] for r in rows)
    to_stdout = alrank(service, "labels", "export", "cli", "--annotator", "nobody", key=key)
    assert to_stdout.returncode == 0 and to_stdout.stdout == ""
    whole = tmp_path / "cli.alrank"
    moved = alrank(service, "projects", "export", "cli", "--out", str(whole), key=key)
    assert moved.returncode == 0 and "30 items" in moved.stderr, moved.stderr
    assert alrank(service, "projects", "delete", "cli", key=key).returncode == 0
    back = alrank(service, "projects", "import", str(whole))
    assert back.returncode == 0, back.stderr
    assert "imported cli: 30 items, 6 labels" in back.stdout
    again = alrank(service, "labels", "export", "cli")
    assert sorted(json.loads(x)["item"] for x in again.stdout.splitlines()) == sorted(ids)
    twice = alrank(service, "projects", "import", str(whole))
    assert twice.returncode == 1 and "already exists" in twice.stderr


def test_the_cli_uploads_parquet(service, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    alrank(service, "projects", "create", str(write_project(tmp_path, "columns")))
    rows = texts(2_500)
    table = pa.table(
        {"doc_id": [r["id"] for r in rows], "body": [r["text"] for r in rows], "shop": ["a"] * 2_500}
    )
    path = tmp_path / "pool.parquet"
    pq.write_table(table, path, row_group_size=1_000)
    up = alrank(service, "items", "upload", "columns", str(path), "--id-key", "doc_id", "--text-key", "body")
    assert up.returncode == 0, up.stderr
    assert "2500 created" in up.stdout and "2500/2500" in up.stderr
    item = Client(service.base, service.admin_key).item("columns", "r7")
    assert item["text"] == rows[7]["text"] and item["metadata"] == {"shop": "a"}


def test_cli_exit_codes(service, tmp_path):
    missing = alrank(service, "projects", "show", "nope")
    assert missing.returncode == 1 and "404" in missing.stderr and "nope" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\nnot json\n')
    alrank(service, "projects", "create", str(write_project(tmp_path, "codes")))
    assert alrank(service, "items", "upload", "codes", str(bad)).returncode == 2
    assert alrank(service, "items", "upload", "codes", str(tmp_path / "absent.jsonl")).returncode == 2
    env_less = subprocess.run(
        [sys.executable, "-m", "service.cli", "--url", "http://127.0.0.1:9", "projects", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "ALRANK_API_KEY": "x"},
    )
    assert env_less.returncode == 3 and "unavailable" in env_less.stderr
    usage = alrank(service, "projects")
    assert usage.returncode == 2


def write_project(tmp_path, name: str):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "schemas": [{"name": "mood", "labels": ["pos", "neg"]}]}))
    return path


def test_a_100k_upload_shows_progress_and_resumes_after_a_kill(service, tmp_path):
    alrank(service, "projects", "create", str(write_project(tmp_path, "big")))
    data = tmp_path / "pool.jsonl"
    with data.open("w") as f:
        for it in texts(100_000):
            f.write(json.dumps(it) + "\n")
    marker = tmp_path / "pool.jsonl.alrank-upload"
    env = {**os.environ, "ALRANK_URL": service.base, "ALRANK_API_KEY": service.admin_key}
    first = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "items", "upload", "big", str(data)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(
        lambda: marker.exists() and json.loads(marker.read_text())["done"] >= 30_000, 300, "30,000 sent"
    )
    first.send_signal(signal.SIGKILL)
    first.communicate()
    done = json.loads(marker.read_text())["done"]
    assert 30_000 <= done < 100_000
    second = alrank(service, "items", "upload", "big", str(data))
    assert second.returncode == 0, second.stderr
    assert f"resuming after record {done:,}" in second.stderr
    assert "100000/100000" in second.stderr and "rec/s" in second.stderr  # tqdm's count, rate and ETA
    assert not marker.exists()
    assert Client(service.base, service.admin_key).project("big")["items"] == 100_000


def test_the_services_own_429_and_503_are_retried(service):
    """A key over its rate limit (429 until the next minute) and a Redis that stops answering
    (503 while it is frozen): the client waits as told and the call succeeds."""
    admin = Client(service.base, service.admin_key)
    admin.create_project({"name": "limits", "schemas": [{"name": "s", "labels": ["a", "b"]}]})
    key = admin.create_key("limits", "slow", role="manager", rate_limit_per_minute=2)
    limited = Client(service.base, key["key"])
    limited.project("limits")
    limited.project("limits")
    started = time.monotonic()
    assert limited.project("limits")["name"] == "limits"  # the third waited for the next window
    assert time.monotonic() - started >= 0.9
    (valkey,) = service.processes("valkey-server")
    os.kill(valkey, signal.SIGSTOP)
    thawed = threading.Timer(3.0, os.kill, (valkey, signal.SIGCONT))
    thawed.start()
    try:
        started = time.monotonic()
        assert admin.project("limits")["name"] == "limits"
        assert time.monotonic() - started >= 2.5  # answered only once Redis was back
    finally:
        thawed.join()
        os.kill(valkey, signal.SIGCONT)
    admin.delete_project("limits")


def test_an_unreadable_upload_marker_starts_the_upload_over(service, tmp_path):
    """A marker cut short (a client killed mid-write before writes were atomic) is not a
    crash: the upload starts from the first record and says why."""
    assert alrank(service, "projects", "create", str(write_project(tmp_path, "cut"))).returncode == 0
    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps(it) + "\n" for it in texts(50)))
    marker = tmp_path / "pool.jsonl.alrank-upload"
    marker.write_text('{"project": "cut", "si')
    answer = alrank(service, "items", "upload", "cut", str(data))
    assert answer.returncode == 0, answer.stderr
    assert "unreadable: starting from the first record" in answer.stderr
    assert not marker.exists() and not marker.with_name(marker.name + ".part").exists()
    counts = alrank(service, "projects", "show", "cut")
    assert json.loads(counts.stdout)["items"] == 50, counts.stdout
