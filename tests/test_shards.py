"""Scoring shards (workers/shards.py): the model's pass over a large pool, split among
free workers, gives the ranking the unsharded pass gives; a shard whose worker is killed
is scored again by the retraining job."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from procs import ROOT, Serve, cmdline, wait_until
from rq import Worker
from test_features import corpus

import workers.shards
from workers import defaults
from workers.features import columns
from workers.refresh import refresh
from workers.shards import shard_count, spans
from workers.store import Store, keys
from workers.worker import make_queue

ITEMS = 600


def make_project(client, name: str, classifier: str, strategy: str) -> None:
    """A project of ``ITEMS`` short texts with client vectors and 30 labels; its queued jobs
    are left to the test to run."""
    body = {
        "name": name,
        "schemas": [{"name": "topic", "labels": ["a", "b", "c"]}],
        "active_learning": {
            "min_instances_for_training": 10,
            "update_frequency": 10,
            "vectorizer_name": "tfidf",
            "classifier_name": classifier,
            "query_strategy": strategy,
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    texts = corpus(ITEMS, 11)
    items = [{"id": f"i{k:04d}", "text": t, "vector": [k % 7, (k * 13) % 5]} for k, t in enumerate(texts)]
    assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code == 200
    labels = [
        {"item": f"i{k:04d}", "schema": "topic", "value": "abc"[len(texts[k]) % 3], "annotator": "x"}
        for k in range(30)
    ]
    assert client.post(f"/v1/projects/{name}/labels", json={"labels": labels}).status_code == 200


def published(store: Store, project: str) -> tuple[list[str], np.ndarray, list]:
    """The published head's ids, their scores and confidences, and predicted labels."""
    meta = store.ranking_meta(project, "topic")
    assert meta is not None and meta["model_version"] is not None
    order = [
        m.decode()
        for m in store.redis.lrange(keys.ranking_part(project, "topic", meta["ranking_id"], "order"), 0, -1)
    ]
    _, entries = store.ranking_entries(project, "topic", order)
    return order, np.array([(e.score, e.confidence) for e in entries]), [e.label for e in entries]


def wait_for(check, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def slow_first_shard(monkeypatch, until) -> None:
    """The retraining job's own shard waits until ``until()``: another worker has the time
    to claim the next."""
    score = workers.shards._score

    def slow(model, xc, span, space):
        if span[0] == 0:
            wait_for(until)
        return score(model, xc, span, space)

    monkeypatch.setattr(workers.shards, "_score", slow)


def shard_keys(conn) -> list[bytes]:
    return conn.keys(keys.project("*") + "shard:*")


@pytest.fixture
def feature_dir(tmp_path, monkeypatch):
    """Rows on disk, and pools split from 100 candidates a shard, however fast their pass."""
    monkeypatch.setenv("ALRANK_FEATURE_DIR", str(tmp_path / "features"))
    monkeypatch.setattr(defaults, "SHARD_ROWS", 100)
    monkeypatch.setattr(defaults, "SHARD_MIN_SECONDS", 0.0)
    return tmp_path / "features"


def test_a_pass_is_cut_into_shards_that_shrink_towards_its_end(monkeypatch):
    """Whole shards of ``SHARD_ROWS`` first, then the rows left over twice the workers,
    down to an eighth of a shard: the last shards are small, so workers finish together."""
    monkeypatch.setattr(defaults, "SHARD_ROWS", 100)
    assert shard_count(1000) == 10
    assert shard_count(1001) == 11
    assert shard_count(60) == 1
    cut = spans(1001, 2)
    assert cut[0][0] == 0 and cut[-1][1] == 1001
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cut))
    sizes = [b - a for a, b in cut]
    assert sizes[:6] == [100] * 6  # 1001 - 500 rows left is still over 4 shards' worth
    assert all(a >= b for a, b in itertools.pairwise(sizes[:-1]))
    assert min(sizes) == 12 and sizes[-1] < 24  # a remainder under 12 joins the last
    assert max(b - a for a, b in spans(1001, 1)) == 100
    assert len(spans(1001, 8)) > len(cut)  # more workers, smaller shards sooner


@pytest.mark.parametrize(
    ("classifier", "strategy"),
    [("logistic_regression", "diverse_uncertainty"), ("random_forest", "diversity")],
)
def test_sharded_and_unsharded_rankings_agree(
    client, redis_conn, redis_url, feature_dir, monkeypatch, classifier, strategy
):
    """Two projects made alike (so their refreshes draw the same seed): one ranked in one
    pass, the other with a worker process scoring a shard from the feature directory. The
    published rankings and models are the same; a forest's space comes back from the
    worker with its probabilities. The texts' TF-IDF and the client vectors are held apart
    and joined a block of rows at a time, blocks that do not divide the shards."""
    monkeypatch.setattr(columns, "PASS_ROWS", 37)
    make_project(client, "whole", classifier, strategy)
    make_project(client, "split", classifier, strategy)
    queue = make_queue(redis_conn)
    queue.empty()  # the uploads' jobs: this test runs the refreshes itself
    store = Store(redis_conn)
    assert refresh(store, "whole", "topic")["scoring"]["shards"] == 1
    helper = subprocess.Popen(
        [sys.executable, "-m", "workers.worker", "--redis-url", redis_url, "--queues", "alrank"],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: any(w.get_state() == "idle" for w in Worker.all(queue=queue)))

        def worker_claimed() -> bool:
            held = [redis_conn.get(k) or b"" for k in shard_keys(redis_conn) if b":claim:" in k]
            return any(h.startswith(b"worker") for h in held)

        slow_first_shard(monkeypatch, worker_claimed)
        result = refresh(store, "split", "topic", queue=queue)
    finally:
        helper.terminate()
        helper.wait(timeout=30)
    assert result["scoring"]["shards"] == len(spans(result["ranked"], 2)) > 2
    assert result["scoring"]["redone"] == 0
    assert result["scoring"]["by_workers"] >= 1
    whole, split = published(store, "whole"), published(store, "split")
    assert split[0] == whole[0]
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-12)
    assert split[2] == whole[2]
    assert shard_keys(redis_conn) == []  # the pass cleans up after itself
    assert list(feature_dir.rglob(".shards/*")) == []


DOOMED = textwrap.dedent(
    """
    import sys, time
    from redis import Redis
    from workers import defaults, shard_helper
    from workers.store import keys

    defaults.SHARD_LEASE_SECONDS = 1.0
    shard_helper.Helper.score = lambda *args: time.sleep(3600)  # killed while it scores
    conn = Redis.from_url(sys.argv[1])
    while not (found := conn.keys(keys.project("split") + "shard:*:spec")):
        time.sleep(0.01)
    token = found[0].decode().split("shard:")[1].split(":")[0]
    shard_helper.run_shard(conn, "worker doomed", "split", token)
    """
)


def test_a_shard_whose_worker_is_killed_is_scored_again(
    client, redis_conn, redis_url, feature_dir, monkeypatch
):
    """A worker claims a shard and is killed with SIGKILL while it scores: its lease
    lapses, the retraining job scores the shard itself, and the ranking is the one an
    unsharded pass gives."""
    make_project(client, "whole", "logistic_regression", "diverse_uncertainty")
    make_project(client, "split", "logistic_regression", "diverse_uncertainty")
    queue = make_queue(redis_conn)
    queue.empty()
    store = Store(redis_conn)
    refresh(store, "whole", "topic")
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED, redis_url])
    monkeypatch.setattr(workers.shards, "free_workers", lambda queue: 1)

    def claimed_then_killed() -> bool:
        held = [redis_conn.get(k) for k in shard_keys(redis_conn) if k.endswith(b":claim:1")]
        if held != [b"worker doomed"]:
            return False
        doomed.kill()
        doomed.wait()
        return True

    slow_first_shard(monkeypatch, claimed_then_killed)
    try:
        started = time.monotonic()
        result = refresh(store, "split", "topic", queue=queue)
        waited = time.monotonic() - started
    finally:
        doomed.kill()
        doomed.wait()
    assert doomed.returncode == -9
    assert result["scoring"] | {"seconds": 0} == {
        "shards": len(spans(result["ranked"], 2)),
        "by_workers": 0,
        "redone": 1,
        "seconds": 0,
    }
    assert waited < 15  # the lapsed lease (1 s), not the job's timeout
    whole, split = published(store, "whole"), published(store, "split")
    assert split[0] == whole[0]
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-12)
    assert shard_keys(redis_conn) == []
    assert list(feature_dir.rglob(".shards/*")) == []


def test_alrank_serve_runs_as_many_workers_as_asked(tmp_path):
    """``--workers 3``: three worker processes, all registered (``/readyz``), one of them
    for rankings and tool syncs only; ``--workers 0`` is refused."""
    import requests

    served = Serve(tmp_path / "data", "--workers=3")
    try:
        wait_until(lambda: len(served.workers()) == 3, 30, "three workers")
        wait_until(
            lambda: requests.get(served.base + "/readyz", timeout=5).json()["workers"] == 3, 30, "ready"
        )
        lines = [cmd for cmd in map(cmdline, served.workers())]
        assert sum("--queues=alrank,alrank-sync" in line for line in lines) == 1
    finally:
        served.close()
    refused = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--workers=0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode == 2 and "at least 1" in refused.stderr


def test_a_shard_result_is_read_into_place_and_a_mismatched_one_is_refused(tmp_path):
    """A helper's ``.npy`` goes straight into the pass's rows; a file of another shape or
    type is an error, never a silent misfit."""
    from workers.shards import _read_into

    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "r.npy", rows)
    room = np.zeros((6, 3), dtype=np.float32)
    _read_into(tmp_path / "r.npy", room[1:5])
    np.testing.assert_array_equal(room[1:5], rows)
    assert not room[0].any() and not room[5].any()
    for wrong in (np.zeros((5, 3), dtype=np.float32), np.zeros((4, 3), dtype=np.float64)):
        with pytest.raises(ValueError, match="holds"):
            _read_into(tmp_path / "r.npy", wrong)
