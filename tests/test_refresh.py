"""The refresh pipeline's stages (workers/refresh.py) and the concepts beside it."""

from __future__ import annotations

import pytest

import workers.refresh
from workers.aggregation import aggregate
from workers.refresh import load_pool, snapshot, training_set
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
    real = workers.refresh.train_ensemble

    def spy(x, targets, *args):
        seen.append(x.shape[0])
        return real(x, targets, *args)

    monkeypatch.setattr(workers.refresh, "train_ensemble", spy)
    result = workers.refresh.refresh(project, "p", "s")
    assert result["status"] == "published" and result["strategy"] == "bald"
    assert seen == [6]  # the model's six training labels, not the ten labelled items
    assert project.list_models("p", "s")[-1]["training_size"] == 6


def test_aggregation_is_a_majority_vote():
    labels = ["a", "b", "c"]
    assert aggregate({"x": "b", "y": "b", "z": "a"}, labels, False) == "b"
    assert aggregate({"x": "b", "y": "a"}, labels, False) == "a"  # a tie: the label listed first
    assert aggregate({"x": ["a", "b"], "y": ["a"], "z": ["a", "c"]}, labels, True) == ["a"]
