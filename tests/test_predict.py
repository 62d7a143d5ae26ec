"""POST /v1/projects/{project}/predict: the serving model's predictions for any items."""

from __future__ import annotations

import numpy as np
import pytest

from workers.features import FeatureCache
from workers.features.files import feature_cache
from workers.models import load_model
from workers.store import Store

TEXTS = {
    "sport": "goal match striker league coach penalty season keeper".split(),
    "politics": "vote senate budget minister party election tax bill".split(),
}


def make_project(client, run_jobs, vectors: bool = False, **al) -> dict[str, str]:
    body = {
        "name": "pred",
        "schemas": [{"name": "topic", "labels": list(TEXTS)}],
        "active_learning": {
            "vectorizer_name": "tfidf",
            "min_instances_for_training": 10,
            "update_frequency": 10,
            "eval_fraction": 0.0,
            **al,
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    rng = np.random.default_rng(0)
    truth, items = {}, []
    for k in range(200):
        label = list(TEXTS)[k % 2]
        item = {"id": f"i{k}", "text": " ".join(rng.choice(TEXTS[label] + ["the", "a", "of"], 8))}
        if vectors:
            item["vector"] = [float(k % 2), float(rng.normal())]
        truth[item["id"]] = label
        items.append(item)
    assert client.post("/v1/projects/pred/items", json={"items": items}).status_code == 200
    run_jobs()
    return truth


def label_round(client, run_jobs, truth, size=20):
    batch = client.get(f"/v1/projects/pred/next?schema=topic&annotator=ana&size={size}").json
    labels = [
        {"item": it["id"], "schema": "topic", "value": truth[it["id"]], "annotator": "ana"}
        for it in batch["items"]
    ]
    assert client.post("/v1/projects/pred/labels", json={"labels": labels}).status_code == 200
    run_jobs()


def test_before_a_model_it_is_a_conflict_that_says_why(client, run_jobs):
    make_project(client, run_jobs)
    r = client.post("/v1/projects/pred/predict?schema=topic", json={"items": [{"text": "goal"}]})
    assert r.status_code == 409
    assert "min_instances_for_training" in r.json["detail"]


@pytest.mark.parametrize("vectors", [False, True])
def test_predictions_match_the_stored_model_on_pool_items(client, run_jobs, redis_conn, vectors):
    truth = make_project(client, run_jobs, vectors=vectors)
    label_round(client, run_jobs, truth)
    store = Store(redis_conn)
    version = store.ranking_meta("pred", "topic")["model_version"]
    assert version is not None
    ids = [f"i{k}" for k in range(150, 170)]
    docs = store.get_items("pred", ids)
    sent = {i: [float(int(i[1:]) % 2), 0.0] for i in ids}
    body = {
        "items": [
            {"id": i, "text": d["text"], **({"vector": sent[i]} if vectors else {})}
            for i, d in zip(ids, docs, strict=True)
        ]
    }
    r = client.post("/v1/projects/pred/predict?schema=topic", json=body)
    assert r.status_code == 200, r.json
    assert r.json["model_version"] == version
    # the stored model on the pool's own feature rows for those items
    model = load_model(store.model_state("pred", "topic", version))
    pool_ids = [i for i, _ in store.iter_items("pred")]
    texts = [d["text"] for _, d in store.iter_items("pred")]
    vecs = store.load_vectors("pred", pool_ids, 2) if vectors else None
    cache: FeatureCache = feature_cache(store, "pred")
    x, report = cache.pool_features(pool_ids, texts, vecs, "tfidf")
    rows = [pool_ids.index(i) for i in ids]
    xr = x[rows]
    if vectors:  # the request sent its own vectors: use them, scaled as the pool's, there too
        assert report.vector_scale is not None
        xr = xr.tolil()
        xr[:, -2:] = report.vector_scale.apply(np.array([sent[i] for i in ids]))
        xr = xr.tocsr()
    expected = model.predict_proba(xr)
    got = np.array([[p["probabilities"][c] for c in model.classes] for p in r.json["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [p["id"] for p in r.json["predictions"]] == ids
    preds = r.json["predictions"]
    assert [p["label"] for p in preds] == [model.classes[int(np.argmax(e))] for e in expected]
    assert np.mean([p["label"] == truth[i] for p, i in zip(r.json["predictions"], ids, strict=True)]) > 0.8


def test_items_outside_the_pool_and_words_it_never_saw(client, run_jobs):
    truth = make_project(client, run_jobs)
    label_round(client, run_jobs, truth)
    items = [
        {"text": "the striker scored a late penalty goal"},
        {"text": "the senate passed the budget bill"},
        {"text": "zzqx unseen vocabulary only"},
        {"text": ""},
    ]
    r = client.post("/v1/projects/pred/predict?schema=topic", json={"items": items})
    assert r.status_code == 200, r.json
    preds = r.json["predictions"]
    assert [p["label"] for p in preds[:2]] == ["sport", "politics"]
    for p in preds:
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-6
        assert p["confidence"] == pytest.approx(max(p["probabilities"].values()))


def test_a_new_model_serves_after_a_retrain(client, run_jobs):
    truth = make_project(client, run_jobs)
    label_round(client, run_jobs, truth)
    first = client.post("/v1/projects/pred/predict?schema=topic", json={"items": [{"text": "goal"}]}).json
    label_round(client, run_jobs, truth)
    second = client.post("/v1/projects/pred/predict?schema=topic", json={"items": [{"text": "goal"}]}).json
    assert second["model_version"] > first["model_version"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"items": []}, "items"),
        ({"items": [{"id": "x"}]}, "text, a vector"),
        ({"items": [{"text": "a"}] * 1001}, "items"),
        ({"items": [{"vector": [1.0, 2.0]}]}, "without vectors"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(client, run_jobs, body, words):
    truth = make_project(client, run_jobs)
    label_round(client, run_jobs, truth)
    r = client.post("/v1/projects/pred/predict?schema=topic", json=body)
    assert r.status_code == 422
    assert words in str(r.json)


def test_unknown_schema_and_project(client, run_jobs):
    make_project(client, run_jobs)
    r = client.post("/v1/projects/pred/predict?schema=nope", json={"items": [{"text": "a"}]})
    assert r.status_code == 422 and "nope" in r.json["detail"]
    r = client.post("/v1/projects/nope/predict?schema=topic", json={"items": [{"text": "a"}]})
    assert r.status_code == 404


@pytest.mark.parametrize(
    "classifier,params,strategy",
    [
        ("svc", {"C": 10.0}, "diverse_uncertainty"),
        ("random_forest", {"n_estimators": 60, "max_depth": 12}, "bald"),
        ("extra_trees", {"n_estimators": 60}, "badge"),
        ("hist_gradient_boosting", {"max_iter": 60}, "uncertainty"),
        ("auto", None, "diversity"),
    ],
)
def test_a_non_linear_schema_trains_ranks_and_predicts_through_the_service(
    client, run_jobs, classifier, params, strategy
):
    """A pool no hyperplane splits (XOR of two coordinates), learned by each non-linear kind
    with a strategy it serves: the model is served, the ranking handed out, predictions on
    new items follow the XOR, and the history names the kind and its training time."""
    rng = np.random.default_rng(0)
    body = {
        "name": "xor",
        "schemas": [{"name": "s", "labels": ["same", "diff"]}],
        "active_learning": {
            "classifier_name": classifier,
            "classifier_params": params,
            "query_strategy": strategy,
            "min_instances_for_training": 40,
            "update_frequency": 40,
            "eval_fraction": 0.0,
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    points = rng.uniform(-1, 1, (400, 2))
    truth = {f"p{k}": "same" if x * y > 0 else "diff" for k, (x, y) in enumerate(points)}
    items = [{"id": f"p{k}", "vector": [float(x), float(y)]} for k, (x, y) in enumerate(points)]
    assert client.post("/v1/projects/xor/items", json={"items": items}).status_code == 200
    run_jobs()
    for _ in range(3):
        batch = client.get("/v1/projects/xor/next?schema=s&annotator=a&size=40").json["items"]
        labels = [
            {"item": it["id"], "schema": "s", "annotator": "a", "value": truth[it["id"]]} for it in batch
        ]
        assert client.post("/v1/projects/xor/labels", json={"labels": labels}).status_code == 200
        run_jobs()
    served = client.get("/v1/projects/xor/next?schema=s&annotator=b&size=5").json
    assert served["model_version"] is not None and served["strategy"] == strategy
    latest = client.get("/v1/projects/xor/models?schema=s").json["models"][-1]
    chosen = latest["metrics"]["model_choice"]["chosen"] if classifier == "auto" else classifier
    assert latest["classifier"] == chosen
    assert latest["classifier"] != "logistic_regression" and latest["train_seconds"] > 0
    grid = [(0.5, 0.5), (-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5)]
    r = client.post("/v1/projects/xor/predict?schema=s", json={"items": [{"vector": list(p)} for p in grid]})
    assert r.status_code == 200, r.json
    assert [p["label"] for p in r.json["predictions"]] == ["same", "same", "diff", "diff"]
