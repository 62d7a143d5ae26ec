"""The annotation loop end to end over HTTP, with real RQ job processing.

Data: scikit-learn's bundled digits (1,797 images as 64-d vectors, 10 classes).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workers.features import VectorScale
from workers.models import load_model
from workers.ranking import balance_classes
from workers.store import Store
from workers.strategies.uncertainty import margin

SCHEMA = "digit"


@pytest.fixture
def digits():
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), [str(v) for v in y]


def create(client, **al):
    body = {
        "name": "digits",
        "schemas": [{"name": SCHEMA, "labels": [str(i) for i in range(10)]}],
        "active_learning": {
            "query_strategy": "uncertainty",
            "min_instances_for_training": 30,
            "update_frequency": 20,
            "eval_fraction": 0.0,
            "random_sample_percent": 0.0,
            **al,
        },
    }
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.json
    return r.json


def upload(client, x, y):
    items = [{"id": f"d{i}", "vector": x[i].tolist(), "metadata": {"n": i}} for i in range(len(y))]
    r = client.post("/v1/projects/digits/items", json={"items": items})
    assert r.status_code == 200, r.json
    return r.json


def label(client, ids, y, annotator="ann"):
    labels = [{"item": i, "schema": SCHEMA, "value": y[int(i[1:])], "annotator": annotator} for i in ids]
    r = client.post("/v1/projects/digits/labels", json={"labels": labels})
    assert r.status_code == 200, r.json
    return r.json


def next_batch(client, annotator, size=10):
    r = client.get(f"/v1/projects/digits/next?schema={SCHEMA}&annotator={annotator}&size={size}")
    assert r.status_code == 200, r.json
    return r.json


def test_full_loop(client, redis_conn, run_jobs, digits):
    x, y = digits
    create(client)
    assert upload(client, x, y)["created"] == len(y)
    run_jobs()

    # cold start: typical items of the pool's clusters, not the upload order
    first = next_batch(client, "ann", size=30)
    assert first["strategy"] == "cold_start" and first["model_version"] is None
    ids = [it["id"] for it in first["items"]]
    assert ids != [f"d{i}" for i in range(30)]
    assert len({y[int(i[1:])] for i in ids}) >= 8  # covers most of the 10 digits

    # seed labels -> version 1
    out = label(client, ids, y)
    assert out["new"] == 30 and SCHEMA in out["training_jobs"]
    run_jobs()
    models = client.get(f"/v1/projects/digits/models?schema={SCHEMA}").json["models"]
    assert [m["version"] for m in models] == [1]
    assert models[0]["training_size"] == 30

    # a batch, labelled, crosses update_frequency -> version 2
    batch = next_batch(client, "ann", size=20)
    assert batch["model_version"] == 1
    label(client, [it["id"] for it in batch["items"]], y)
    run_jobs()
    models = client.get(f"/v1/projects/digits/models?schema={SCHEMA}").json["models"]
    assert [m["version"] for m in models] == [1, 2]

    # the next batch comes from version 2: exactly the least-certain unlabelled items,
    # taken class by predicted class so that the labels keep the pool's class mix
    other = next_batch(client, "other", size=5)  # leased by someone else
    batch = next_batch(client, "ann", size=10)
    assert batch["model_version"] == 2 and batch["strategy"] == "uncertainty"
    store = Store(redis_conn)
    model = load_model(store.model_state("digits", SCHEMA, 2))
    labelled = set(store.load_labels("digits", SCHEMA))
    leased_by_other = {it["id"] for it in other["items"]}
    pool = [f"d{i}" for i in range(len(y)) if f"d{i}" not in labelled]
    scaled = VectorScale.fit(x).apply(x)  # the model sees the vectors standardised over the pool
    proba = model.predict_proba(scaled[[int(i[1:]) for i in pool]])
    by_margin = np.argsort(-margin(proba), kind="stable")
    counts = np.array([sum(y[int(i[1:])] == c for i in labelled) for c in model.classes], dtype=float)
    ranked = balance_classes(by_margin, proba.argmax(axis=1), proba.mean(axis=0), counts, 50)
    expected = [pool[j] for j in ranked if pool[j] not in leased_by_other][:10]
    got = [it["id"] for it in batch["items"]]
    assert got == expected
    assert [it["id"] for it in other["items"]] == [pool[j] for j in ranked][:5]
    # and the balance changed what margin alone would have served
    assert got != [pool[j] for j in by_margin if pool[j] not in leased_by_other][:10]
    for it in batch["items"]:
        assert it["source"] == "ranking"
        assert it["prediction"]["label"] in [str(i) for i in range(10)]
        assert 0 < it["prediction"]["confidence"] <= 1

    # labelled items never come back; leases return to their holder first
    again = next_batch(client, "ann", size=10)
    assert [it["id"] for it in again["items"]] == got
    assert {it["source"] for it in again["items"]} == {"lease"}
    label(client, got, y)
    after = next_batch(client, "ann", size=50)
    assert not ({it["id"] for it in after["items"]} & (labelled | set(got)))
    assert not ({it["id"] for it in after["items"]} & leased_by_other)

    proj = client.get("/v1/projects/digits").json
    counts = proj["counts"][SCHEMA]
    assert proj["items"] == len(y)
    assert counts["labelled"] == 60
    assert counts["leased"] == 55
    assert counts["model_version"] == 2


@pytest.mark.parametrize(
    "al",
    [
        {"query_strategy": "diverse_uncertainty"},
        {"query_strategy": "diversity"},
        {"query_strategy": "badge"},
        {"query_strategy": "bald", "bald_params": {"n_estimators": 3, "bootstrap_fraction": 0.7}},
        {"query_strategy": "hybrid", "hybrid_weights": {"uncertainty": 0.6, "diversity": 0.4}},
        {"query_strategy": "hybrid", "hybrid_shares": {"badge": 0.5, "bald": 0.3, "random": 0.2}},
        {"query_strategy": "random"},
    ],
)
def test_every_strategy_ranks_through_the_service(client, run_jobs, digits, al):
    x, y = digits
    create(client, **al)
    upload(client, x[:600], y[:600])
    run_jobs()
    seed = next_batch(client, "ann", size=40)
    label(client, [it["id"] for it in seed["items"]], y)
    run_jobs()
    batch = next_batch(client, "ann", size=10)
    assert batch["model_version"] == 1
    assert batch["strategy"] == al["query_strategy"]
    ids = [it["id"] for it in batch["items"]]
    assert len(set(ids)) == 10 and not set(ids) & {it["id"] for it in seed["items"]}
