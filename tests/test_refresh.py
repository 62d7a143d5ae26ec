"""The refresh pipeline's stages (workers/refresh.py, snapshot.py, training.py, scoring.py)
and the concepts beside it."""

from __future__ import annotations

import pytest

import workers.refresh
import workers.scoring
from workers.aggregation import aggregate
from workers.snapshot import load_pool, snapshot, training_set
from workers.store import Store, keys

TEXTS = [
    "the striker scored twice in the final",
    "parliament passed the budget bill",
    "the coach praised the defence",
    "the senate debated the tax reform",
    "fans celebrated the league title",
    "the minister resigned after the vote",
    "the goalkeeper saved a penalty",
    "the party won the election",
    "the team lost the derby",
    "voters rejected the reform",
    "a late goal won the cup",
    "the court struck down the law",
]


@pytest.fixture
def project(client, redis_conn):
    body = {
        "name": "p",
        "schemas": [{"name": "s", "labels": ["sport", "politics"]}],
        "active_learning": {
            "query_strategy": "bald",
            "min_instances_for_training": 4,
            "update_frequency": 100,
            "vectorizer_name": "tfidf",
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"n{i}", "text": t} for i, t in enumerate(TEXTS)]
    assert client.post("/v1/projects/p/items", json={"items": items}).status_code == 200
    labels = [
        {"item": f"n{i}", "schema": "s", "value": "sport" if i % 2 == 0 else "politics", "annotator": "a"}
        for i in range(10)
    ]
    assert client.post("/v1/projects/p/labels", json={"labels": labels}).status_code == 200
    # four of the labelled items were handed out as the random evaluation sample
    redis_conn.sadd(keys.evaluation("p", "s"), "n0", "n1", "n2", "n3")
    return Store(redis_conn)


def test_the_training_set_keeps_evaluation_items_out(project):
    snap = snapshot(project, "p", "s")
    pool = load_pool(project, snap)
    labelled = training_set(snap, pool)
    assert len(labelled.rows) == 10 and len(labelled.held_out) == 4 and len(labelled.train) == 6
    assert {pool.ids[r] for r in labelled.train_rows}.isdisjoint({"n0", "n1", "n2", "n3"})
    assert sorted(pool.ids[c] for c in labelled.candidates) == ["n10", "n11"]


def test_the_bald_ensemble_learns_from_what_the_model_learns_from(project, monkeypatch):
    seen = []
    real = workers.scoring.train_ensemble

    def spy(x, targets, *args):
        seen.append(x.shape[0])
        return real(x, targets, *args)

    monkeypatch.setattr(workers.scoring, "train_ensemble", spy)
    result = workers.refresh.refresh(project, "p", "s")
    assert result["status"] == "published" and result["strategy"] == "bald"
    # the served model learns from the ten labelled items (train_on_eval, the default), so
    # its replicas do; the measured fit from the six outside the evaluation sample
    assert seen == [10]
    latest = project.list_models("p", "s")[-1]
    assert latest["training_size"] == 6 and latest["served_training_size"] == 10
    assert latest["evaluation"]["size"] == 4


def test_each_version_is_measured_by_its_fit_without_the_evaluation_sample(project, monkeypatch):
    """The evaluation figures come from a fit that never saw the evaluation items; the model
    served learns from them too, unless ``train_on_eval`` is off."""
    import workers.training

    fits = []
    real = workers.training.fit_rows

    def spy(snap, xl, targets, *args, **kwargs):
        fits.append(len(targets))
        return real(snap, xl, targets, *args, **kwargs)

    monkeypatch.setattr(workers.training, "fit_rows", spy)
    from dataclasses import replace

    from workers.features.files import feature_cache
    from workers.snapshot import read_pool

    snap = snapshot(project, "p", "s")
    pool, x, _, _ = read_pool(project, snap, feature_cache(project, "p"), lambda stage, fraction: None)
    labelled = training_set(snap, pool)
    served, measured = workers.training.fit_version(snap, labelled, x)
    assert fits == [6, 10] and served is not measured
    assert served.temperature == measured.temperature and served.metrics is measured.metrics
    held = x[[labelled.rows[k] for k in labelled.held_out]]
    trained = workers.training.ModelVersion.stored(served, {}, {}, measured)
    assert (trained.measured_model.predict_proba(held) == measured.predict_proba(held)).all()

    fits.clear()
    off = replace(snap, al={**snap.al, "train_on_eval": False})
    served, measured = workers.training.fit_version(off, labelled, x)
    assert fits == [6] and served is measured
    assert workers.training.ModelVersion.stored(served, {}, {}, measured).measured is None


def test_aggregation_is_a_majority_vote():
    labels = ["a", "b", "c"]
    assert aggregate({"x": "b", "y": "b", "z": "a"}, labels, False) == "b"
    assert aggregate({"x": "b", "y": "a"}, labels, False) == "a"  # a tie: the label listed first
    assert aggregate({"x": ["a", "b"], "y": ["a"], "z": ["a", "c"]}, labels, True) == ["a"]


def test_a_large_pool_publishes_the_head_of_its_ranking(client, redis_conn, run_jobs, monkeypatch):
    """Past ``RANKING_HEAD_MIN`` items only the head of the order is published (with the
    random list), each entry keeping its rank in the whole order; batches walk the head in
    rank order, then the random list, and never hand out an item twice."""
    from workers import defaults

    monkeypatch.setattr(defaults, "RANKING_HEAD_MIN", 40)
    monkeypatch.setattr(defaults, "EXPLORE_DEPTH", 30)
    body = {
        "name": "big",
        "schemas": [{"name": "s", "labels": ["sport", "politics"]}],
        "active_learning": {
            "min_instances_for_training": 4,
            "update_frequency": 5,
            "vectorizer_name": "tfidf",
            "random_sample_percent": 0.0,
            "eval_fraction": 0.0,
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{k}", "text": f"{TEXTS[k % len(TEXTS)]} number {k}"} for k in range(400)]
    assert client.post("/v1/projects/big/items", json={"items": items}).status_code == 200
    values = ("sport", "politics")
    labels = [{"item": f"i{k}", "schema": "s", "value": values[k % 2], "annotator": "a"} for k in range(8)]
    assert client.post("/v1/projects/big/labels", json={"labels": labels}).status_code == 200
    run_jobs()
    store = Store(redis_conn)
    meta = store.ranking_meta("big", "s")
    assert meta is not None and meta["model_version"] is not None
    assert meta["ranked"] == 392 and meta["head"] == 40  # max(40, 4 x (5 x 1 annotator + 0 leased))
    rid = meta["ranking_id"]
    order = [m.decode() for m in redis_conn.lrange(keys.ranking_part("big", "s", rid, "order"), 0, -1)]
    assert len(order) == 40
    info = redis_conn.hgetall(keys.ranking_part("big", "s", rid, "info"))
    assert 40 <= len(info) <= 70  # the head and the random list, not the pool
    _, entries = store.ranking_entries("big", "s", order)
    assert [e.rank for e in entries] == list(range(1, 41))
    pos = redis_conn.hgetall(keys.ranking_part("big", "s", rid, "pos"))
    assert all(int(pos[k]) == store.ranking_entries("big", "s", [k.decode()])[1][0].rank - 1 for k in pos)
    seen: list[str] = []
    sources: list[str] = []
    for k in range(10):  # ten annotators, each holding a batch
        batch = client.get(f"/v1/projects/big/next?schema=s&annotator=b{k}&size=10").json["items"]
        seen += [it["id"] for it in batch]
        sources += [it["source"] for it in batch]
    assert seen[:40] == order and sources[:40] == ["ranking"] * 40
    assert set(sources[40:]) <= {"random", "fallback"} and len(seen) == len(set(seen)) == 100
