"""Many annotators asking at once never receive the same item."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import numpy as np
import pytest

N_ITEMS = 3000
N_THREADS = 16
REQUESTS_PER_THREAD = 25


class Holdings:
    """Which annotators each item was handed to, from batches asked for on many threads."""

    def __init__(self) -> None:
        self.holders: dict[str, set[str]] = defaultdict(set)
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def take(self, c, project: str, annotator: str, size: int) -> list[str] | None:
        """Ask for a batch and note who holds its items; None (the error noted) on a non-200."""
        r = c.get(f"/v1/projects/{project}/next?schema=s&annotator={annotator}&size={size}")
        if r.status_code != 200:
            self.errors.append(f"{r.status_code}: {r.get_data(as_text=True)}")
            return None
        ids = [it["id"] for it in r.json["items"]]
        with self.lock:
            for i in ids:
                self.holders[i].add(annotator)
        return ids

    def shared(self) -> dict[str, set[str]]:
        return {i: h for i, h in self.holders.items() if len(h) > 1}


def acting_as(app, client):
    """Another test client with the same key, for another thread."""
    c = app.test_client()
    c.environ_base.update(client.environ_base)
    return c


def test_concurrent_annotators_never_share_an_item(app, client, run_jobs):
    body = {
        "name": "race",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"update_frequency": 1_000_000},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{i}", "vector": [float(i % 97), float(i % 13)]} for i in range(N_ITEMS)]
    assert client.post("/v1/projects/race/items", json={"items": items}).status_code == 200
    run_jobs()

    held = Holdings()
    start = threading.Barrier(N_THREADS)

    def annotate(t: int) -> None:
        c = acting_as(app, client)
        annotator = f"ann{t}"
        start.wait()
        for _ in range(REQUESTS_PER_THREAD):
            ids = held.take(c, "race", annotator, 5)
            if ids is None:
                return
            # label most of the batch, as a person would, so the next ask needs new items
            labels = [{"item": i, "schema": "s", "value": "a", "annotator": annotator} for i in ids[:4]]
            if labels:
                c.post("/v1/projects/race/labels", json={"labels": labels})

    threads = [threading.Thread(target=annotate, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert not held.errors, held.errors[:3]
    shared = held.shared()
    assert not shared, f"{len(shared)} items went to more than one annotator, e.g. {list(shared.items())[:3]}"
    # every request was served, and labelled items were replaced by fresh ones
    assert len(held.holders) >= N_THREADS * REQUESTS_PER_THREAD * 4


def test_one_refresh_of_a_schema_at_a_time(redis_conn, monkeypatch):
    """The refresh lock: a second holder waits for the first, and a holder that died (its
    lock no longer renewed) frees it within the lock's lifetime."""
    from workers import defaults
    from workers.store import Store, keys

    monkeypatch.setattr(defaults, "REFRESH_LOCK_SECONDS", 1.0)
    store = Store(redis_conn)
    inside: list[str] = []
    order: list[str] = []
    first_in = threading.Event()

    def refresh(name: str, hold: float) -> None:
        with store.refresh_lock("p", "s"):
            inside.append(name)
            assert len(inside) == 1, inside  # never two at once
            order.append(name)
            first_in.set()
            time.sleep(hold)  # longer than the lock's lifetime: renewed meanwhile
            inside.remove(name)

    a = threading.Thread(target=refresh, args=("a", 2.5))
    a.start()
    first_in.wait(5)
    b = threading.Thread(target=refresh, args=("b", 0.1))
    b.start()
    a.join()
    b.join()
    assert order == ["a", "b"]
    # a holder killed mid-refresh: its lock, no longer renewed, expires
    dead = redis_conn.lock(keys.refresh_lock("p", "s"), timeout=1.0)
    assert dead.acquire(blocking=False)
    started = time.monotonic()
    with store.refresh_lock("p", "s", wait=5):
        waited = time.monotonic() - started
    assert 0.5 < waited < 2.0
    with pytest.raises(TimeoutError):
        held = redis_conn.lock(keys.refresh_lock("p", "s"), timeout=10)
        assert held.acquire(blocking=False)
        with store.refresh_lock("p", "s", wait=0.3):
            pass


def test_a_run_again_takes_over_the_lock_its_dead_run_left(redis_conn):
    """A job RQ runs again (its earlier run found dead) takes over the lock that run left at
    once; any other job waits for it as for a live holder."""
    from workers.store import Store, keys

    store = Store(redis_conn)
    name = keys.refresh_lock("p", "s")
    # the earlier run of job j1, killed while it held the lock for a long while yet
    assert redis_conn.set(name, "j1/0123abcd", px=60_000, nx=True)
    with pytest.raises(TimeoutError):
        with store.refresh_lock("p", "s", wait=0.3, owner="j2"):
            pass
    with pytest.raises(TimeoutError):
        with store.refresh_lock("p", "s", wait=0.3):
            pass
    assert redis_conn.get(name) == b"j1/0123abcd"  # waiting never freed it
    started = time.monotonic()
    with store.refresh_lock("p", "s", wait=5, owner="j1"):
        assert time.monotonic() - started < 0.3
        assert redis_conn.get(name).startswith(b"j1/") and redis_conn.get(name) != b"j1/0123abcd"
    assert redis_conn.get(name) is None  # released at the end of the block
    # a job id that only begins like the holder's is another job
    assert redis_conn.set(name, "j10/ffff", px=60_000, nx=True)
    with pytest.raises(TimeoutError):
        with store.refresh_lock("p", "s", wait=0.3, owner="j1"):
            pass


def test_a_cleaning_lock_a_killed_worker_left_lapses_soon(redis_conn, monkeypatch):
    """The lock on a queue's registries' cleaning, held by a worker killed while it
    cleaned, lapses after CLEANING_LOCK_SECONDS (RQ's own lives 899 s), and the next
    worker's maintenance pass cleans again, which is what retries abandoned jobs."""
    import rq.worker.base

    from workers import defaults
    from workers.worker import AlrankWorker, make_queue

    cleaned: list[str] = []
    monkeypatch.setattr(rq.worker.base, "clean_registries", lambda queue, *_: cleaned.append(queue.name))
    monkeypatch.setattr(defaults, "CLEANING_LOCK_SECONDS", 1)
    queue = make_queue(redis_conn)
    assert queue.acquire_maintenance_lock()  # taken, never released: its worker was killed
    assert 0 < redis_conn.pttl(queue.registry_cleaning_key) <= 1000
    assert not make_queue(redis_conn).acquire_maintenance_lock()
    worker = AlrankWorker([make_queue(redis_conn)], connection=redis_conn)
    worker.clean_registries()
    assert cleaned == []  # the lock still held
    time.sleep(1.1)
    worker.clean_registries()
    assert cleaned == [queue.name]
    assert redis_conn.exists(queue.registry_cleaning_key) == 0  # released after the pass


def test_twenty_annotators_at_once_never_get_a_model_on_fewer_labels(tmp_path):
    """20 annotators label through a running ``alrank serve`` (two workers) at once, a
    retrain every 5 labels: every model version is trained on at least as many labels as
    the version before it."""
    from procs import Annotator, Serve, wait_until

    served = Serve(tmp_path / "data")
    try:
        admin = Annotator(served.base, served.admin_key, project="busy")
        admin.create(n=3000, seed=2, update_frequency=5)
        wait_until(
            lambda: admin.call("GET", "/v1/projects/busy").json()["counts"]["topic"]["ranking"] is not None,
            60,
            "the cold start",
        )
        errors: list[str] = []

        def annotate(k: int) -> None:
            me = Annotator(served.base, served.admin_key, project="busy")
            me.truth = admin.truth
            rng = np.random.default_rng(k)
            try:
                for _ in range(15):  # spread over seconds, so retrains run while labels come
                    me.label_round(size=2, annotator=f"ann{k}")
                    time.sleep(float(rng.uniform(0.1, 0.6)))
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=annotate, args=(k,)) for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        labelled = admin.call("GET", "/v1/projects/busy").json()["counts"]["topic"]["with_any_label"]
        assert labelled == 20 * 15 * 2
        # the last labels, fewer than update_frequency, wait for the next trigger: ask for it
        assert admin.call("POST", "/v1/projects/busy/train", params={"schema": "topic"}).status_code == 202

        def models() -> list[dict]:
            return admin.call("GET", "/v1/projects/busy/models?schema=topic").json()["models"]

        wait_until(
            lambda: (m := models()) and m[-1]["training_size"] == labelled, 120, "a model on every label"
        )
        sizes = [m["training_size"] for m in models()]
        assert sizes == sorted(sizes), sizes
        assert len(sizes) >= 3
    finally:
        served.close()


def test_head_swaps_under_concurrent_batches_hand_out_no_item_twice(
    app, client, run_jobs, redis_conn, monkeypatch
):
    """Rankings that publish a small head, replaced again and again by a worker while eight
    annotators ask for batches and label them: no item is ever held by two of them."""
    from workers import defaults
    from workers.store import Store

    monkeypatch.setattr(defaults, "RANKING_HEAD_MIN", 60)
    monkeypatch.setattr(defaults, "RANKING_HEAD_MARGIN", 0)
    monkeypatch.setattr(defaults, "EXPLORE_DEPTH", 40)
    body = {
        "name": "swap",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"update_frequency": 8, "min_instances_for_training": 4, "eval_fraction": 0.0},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{i}", "vector": [float(i % 97), float(i % 13)]} for i in range(1200)]
    assert client.post("/v1/projects/swap/items", json={"items": items}).status_code == 200
    run_jobs()
    first = Store(redis_conn).ranking_meta("swap", "s")
    assert first is not None and first["head"] == 60

    held = Holdings()
    start = threading.Barrier(8)
    swapped = threading.Event()  # two rankings published since the start: enough rounds

    def annotate(t: int) -> None:
        c = acting_as(app, client)
        start.wait()
        for k in range(35):
            if k >= 15 and swapped.is_set():
                return
            ids = held.take(c, "swap", f"ann{t}", 4)
            if ids is None:
                return
            labels = [
                {"item": i, "schema": "s", "value": "ab"[(t + k) % 2], "annotator": f"ann{t}"} for i in ids
            ]
            for _ in range(50):  # a 503 (storage slow under load) is retried, as a client does
                r = c.post("/v1/projects/swap/labels", json={"labels": labels})
                if r.status_code != 503:
                    break
                time.sleep(0.1)
            if r.status_code != 200:  # labels lost would leave nothing to retrain on
                held.errors.append(f"labels {r.status_code}: {r.get_data(as_text=True)}")
            time.sleep(0.05)

    threads = [threading.Thread(target=annotate, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):  # the worker, in this thread (RQ sets signals)
        run_jobs()
        now = Store(redis_conn).ranking_meta("swap", "s")
        if now is not None and int(now["ranking_id"]) >= int(first["ranking_id"]) + 2:
            swapped.set()
        time.sleep(0.02)
    for th in threads:
        th.join()

    assert not held.errors, held.errors[:3]
    shared = held.shared()
    assert not shared, f"{len(shared)} items went to more than one annotator, e.g. {list(shared.items())[:3]}"
    last = Store(redis_conn).ranking_meta("swap", "s")
    assert last is not None and int(last["ranking_id"]) >= int(first["ranking_id"]) + 2  # swapped meanwhile
