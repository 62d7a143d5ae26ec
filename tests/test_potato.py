"""Projects from Potato config files as they are (``POST /v1/projects/potato``), every key of
Potato 2.12.1's ``active_learning:`` block honoured, mapped or refused with its reason, and
the resolution strategies Potato offers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from workers.aggregation import annotator_weights, resolve
from workers.potato import NOT_USED, signature_matches, webhook_labels

SHARED = Path(__file__).resolve().parents[2] / "shared" / "integrations" / "potato-2.12.1"

HEAD = """annotation_task_name: sentiment-al
annotation_schemes:
  - annotation_type: radio
    name: sentiment
    labels: [positive, negative, neutral]
"""

GUIDE_BASIC = (
    HEAD
    + """active_learning:
  enabled: true
  schema_names: [sentiment]
  min_annotations_per_instance: 2
  min_instances_for_training: 20
  update_frequency: 10
  max_instances_to_reorder: 1000
  resolution_strategy: majority_vote
  random_sample_percent: 20
"""
)
"""The active-learning guide's "Example Basic Configuration" block."""


def create(client, text: str, name: str | None = None):
    url = "/v1/projects/potato" + (f"?name={name}" if name else "")
    return client.post(url, data=text.encode(), headers={"Content-Type": "application/yaml"})


def test_the_guides_sentiment_example_is_created_as_it_is(client):
    if not (SHARED / "example-sentiment.yaml").exists():
        pytest.skip("the shared Potato example is not beside the project")
    answer = create(client, (SHARED / "example-sentiment.yaml").read_text())
    assert answer.status_code == 201, answer.json
    project = answer.json
    assert project["name"] == "sentiment-al"
    assert project["schemas"] == [
        {"name": "sentiment", "labels": ["positive", "negative", "neutral"], "multi_label": False}
    ]
    al = project["active_learning"]
    assert al["random_sample_percent"] == 0.2 and al["min_annotations_per_instance"] == 2
    assert al["classifier_name"] == "logistic_regression" and al["vectorizer_name"] == "tfidf"
    assert al["vectorizer_params"] == {"max_features": 1000, "stop_words": "english"}
    assert any("20% " in note for note in project["notes"])
    assert project["api_key"]["role"] == "manager"


def test_the_guides_basic_example_is_created(client):
    answer = create(client, GUIDE_BASIC, name="basic")
    assert answer.status_code == 201, answer.json
    al = answer.json["active_learning"]
    assert al["max_instances_to_reorder"] == 1000 and al["random_sample_percent"] == 0.2


@pytest.mark.parametrize(
    "block,expected",
    [
        ({"random_sample_percent": 0.2}, {"random_sample_percent": 0.2}),
        ({"random_sample_percent": 35}, {"random_sample_percent": 0.35}),
        ({"resolution_strategy": "consensus"}, {"resolution_strategy": "consensus"}),
        ({"resolution_strategy": "random"}, {"resolution_strategy": "random"}),
        ({"resolution_strategy": "weighted_average"}, {"resolution_strategy": "weighted_average"}),
        ({"classifier_params": {"C": 1.0}}, {"classifier_params": {"C": 1.0}}),
        (
            {"classifier": {"name": "sklearn.svm.LinearSVC", "hyperparameters": {"C": 0.5}}},
            {"classifier_name": "linear_svm", "classifier_params": {"C": 0.5}},
        ),
        (
            {
                "vectorizer": {
                    "name": "sklearn.feature_extraction.text.TfidfVectorizer",
                    "hyperparameters": {"max_features": 1000},
                }
            },
            {"vectorizer_name": "tfidf", "vectorizer_params": {"max_features": 1000}},
        ),
        (
            {
                "vectorizer_name": "sklearn.feature_extraction.text.TfidfVectorizer",
                "vectorizer_kwargs": {"max_features": 1000, "ngram_range": [1, 2], "stop_words": "english"},
            },
            {"vectorizer_params": {"max_features": 1000, "ngram_range": [1, 2], "stop_words": "english"}},
        ),
        ({"classifier_name": "sklearn.naive_bayes.MultinomialNB"}, {"classifier_name": "multinomial_nb"}),
        (
            {"classifier_name": "sklearn.naive_bayes.MultinomialNB", "classifier_kwargs": {"alpha": 0.5}},
            {"classifier_name": "multinomial_nb", "classifier_params": {"alpha": 0.5}},
        ),
        (
            {
                "classifier_name": "sklearn.svm.SVC",
                "classifier_kwargs": {"C": 3.0, "gamma": "scale", "kernel": "rbf", "probability": True},
            },
            {"classifier_name": "svc", "classifier_params": {"C": 3.0, "gamma": "scale"}},
        ),
        (
            {"classifier_name": "sklearn.svm.SVC", "classifier_kwargs": {"kernel": "linear", "C": 0.5}},
            {"classifier_name": "linear_svm", "classifier_params": {"C": 0.5}},
        ),
        (
            {
                "classifier_name": "sklearn.ensemble.RandomForestClassifier",
                "classifier_kwargs": {"n_estimators": 50, "max_depth": 8, "n_jobs": -1, "random_state": 1},
            },
            {"classifier_name": "random_forest", "classifier_params": {"n_estimators": 50, "max_depth": 8}},
        ),
        ({"calibrate_probabilities": False}, {"calibrate_probabilities": False}),
        ({"cold_start_strategy": "random", "cold_start_batch_size": 20}, {"cold_start_strategy": "random"}),
        ({"schema_names": []}, {"schema_names": None}),
        ({"model_persistence": {"enabled": True, "save_directory": "./models", "retention_count": 2}}, {}),
        ({"model_persistence_enabled": True, "model_save_directory": "./m", "model_retention_count": 2}, {}),
        ({"use_icl_ensemble": False, "icl_ensemble_params": {"initial_icl_weight": 0.7}}, {}),
        (
            {"annotation_routing": False, "routing_thresholds": {"a": 0.9}, "verification_sample_rate": 0.2},
            {},
        ),
        ({"confidence_method": "logprobs", "database": {"enabled": False}}, {}),
        ({"schema_configs": {"sentiment": {"min_annotations_per_instance": 3}}}, {}),
        ({"llm": {"enabled": False}}, {}),
    ],
)
def test_each_potato_key_is_honoured_or_mapped(client, block, expected):
    text = HEAD + yaml.safe_dump({"active_learning": block})
    answer = create(client, text, name="keys")
    assert answer.status_code == 201, answer.json
    al = answer.json["active_learning"]
    for key, value in expected.items():
        assert al[key] == value, key
    # a key with nothing to do in alrank is named in a note that says why
    for key in set(block) & (set(NOT_USED) | {"llm", "use_icl_ensemble"}):
        assert any(f"active_learning.{key}:" in note for note in answer.json["notes"]), key


@pytest.mark.parametrize(
    "block,words",
    [
        ({"cold_start_strategy": "llm"}, ["cold_start_strategy", "offline"]),
        ({"llm": {"enabled": True, "endpoint_url": "http://localhost:8080/v1"}}, ["llm", "offline"]),
        ({"llm_enabled": True, "llm_config": {"endpoint_url": "http://x"}}, ["llm_enabled", "offline"]),
        ({"use_icl_ensemble": True}, ["use_icl_ensemble", "offline"]),
        (
            {
                "classifier_name": "sklearn.ensemble.RandomForestClassifier",
                "classifier_kwargs": {"oob_score": True},
            },
            ["classifier_params.oob_score"],
        ),
        (
            {"classifier_name": "sklearn.svm.SVC", "classifier_kwargs": {"kernel": "poly"}},
            ["kernel", "'poly'", "rbf"],
        ),
        (
            {"classifier_name": "sklearn.svm.SVC", "classifier_kwargs": {"degree": 3}},
            ["classifier_params.degree"],
        ),
        ({"classifier_name": "sklearn.svm.SVC", "classifier_kwargs": {"gamma": -1}}, ["gamma"]),
        (
            {"vectorizer_name": "sklearn.feature_extraction.text.CountVectorizer"},
            ["CountVectorizer", "TF-IDF"],
        ),
        (
            {"vectorizer_name": "sentence-transformers", "vectorizer_params": {"model_name": "bge-large"}},
            ["model_name", "all-MiniLM-L6-v2"],
        ),
        ({"classifier_kwargs": {"n_estimators": 100}}, ["classifier_params.n_estimators"]),
        ({"vectorizer_kwargs": {"analyzer": "char"}}, ["vectorizer_params.analyzer"]),
        ({"random_sample_percent": 120}, ["random_sample_percent"]),
        ({"resolution_strategy": "glad"}, ["resolution_strategy"]),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_the_reason(client, block, words):
    answer = create(client, HEAD + yaml.safe_dump({"active_learning": block}), name="refused")
    assert answer.status_code == 422
    detail = str(answer.json)
    for word in words:
        assert word in detail, (word, detail)


def test_a_config_alrank_cannot_read_says_why(client):
    assert "not YAML" in create(client, "annotation_task_name: [unclosed").json["detail"]
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    assert "aliases" in create(client, bomb).json["detail"]
    only_text = "annotation_task_name: t\nannotation_schemes:\n  - {annotation_type: text, name: why}\n"
    assert "nothing for alrank to rank for" in create(client, only_text).json["detail"]
    assert create(client, GUIDE_BASIC, name="twice").status_code == 201
    assert create(client, GUIDE_BASIC, name="twice").status_code == 409


def test_multiselect_and_likert_schemes_become_schemas(client):
    text = """annotation_task_name: many
annotation_schemes:
  - {annotation_type: multiselect, name: topics, labels: [price, delivery, quality]}
  - {annotation_type: likert, name: rating, size: 5, min_label: bad, max_label: good}
  - {annotation_type: text, name: comment}
"""
    answer = create(client, text)
    assert answer.status_code == 201, answer.json
    assert answer.json["schemas"] == [
        {"name": "topics", "labels": ["price", "delivery", "quality"], "multi_label": True},
        {"name": "rating", "labels": ["1", "2", "3", "4", "5"], "multi_label": False},
    ]
    assert any("comment" in note for note in answer.json["notes"])


def test_only_the_admin_key_creates_projects_from_potato(client, anonymous):
    project = create(client, GUIDE_BASIC, name="owner").json
    key = project["api_key"]["key"]
    answer = anonymous.post(
        "/v1/projects/potato?name=other",
        data=GUIDE_BASIC.encode(),
        headers={"Content-Type": "application/yaml", "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 403


LABELS = ["a", "b", "c"]


def test_consensus_trains_only_on_agreement():
    votes = {"i1": {"x": "a", "y": "a"}, "i2": {"x": "a", "y": "b"}, "i3": {"x": ["a", "b"], "y": ["b", "a"]}}
    single = resolve({k: v for k, v in votes.items() if k != "i3"}, LABELS, False, "consensus")
    assert single == {"i1": "a", "i2": None}
    assert resolve({"i3": votes["i3"]}, LABELS, True, "consensus") == {"i3": ["a", "b"]}


def test_random_takes_one_annotators_label_reproducibly():
    votes = {f"i{k}": {"x": "a", "y": "b", "z": "c"} for k in range(300)}
    first = resolve(votes, LABELS, False, "random", seed=7)
    assert first == resolve(votes, LABELS, False, "random", seed=7)
    assert first != resolve(votes, LABELS, False, "random", seed=8)
    counts = {v: list(first.values()).count(v) for v in LABELS}
    assert all(70 < c < 130 for c in counts.values()), counts


def test_weighted_average_trusts_annotators_who_agree_with_the_others():
    votes: dict = {f"i{k}": {"good1": "a", "good2": "a", "careless": "b"} for k in range(10)}
    votes["split"] = {"good1": "b", "careless": "a"}
    weights = annotator_weights(votes, LABELS, False)
    assert weights["good1"] > 0.8 and weights["careless"] < 0.2
    # a plain majority vote breaks the tie by label order; the weighted one follows good1
    assert resolve(votes, LABELS, False, "majority_vote")["split"] == "a"
    assert resolve(votes, LABELS, False, "weighted_average")["split"] == "b"


def test_the_mapped_settings_train_and_rank(client, run_jobs):
    """Potato's vectorizer and classifier hyperparameters, its random cold start, its cap on
    reordering and calibration switched off all reach the model and the ranking."""
    block = {
        "min_instances_for_training": 4,
        "update_frequency": 4,
        "vectorizer_name": "sklearn.feature_extraction.text.TfidfVectorizer",
        "vectorizer_kwargs": {"max_features": 5, "stop_words": "english", "ngram_range": [1, 1]},
        "classifier_kwargs": {"C": 0.5, "random_state": 42},
        "calibrate_probabilities": False,
        "cold_start_strategy": "random",
        "max_instances_to_reorder": 10,
        "query_strategy": "uncertainty",
        "random_sample_percent": 0,
    }
    answer = create(client, HEAD + yaml.safe_dump({"active_learning": block}), name="mapped")
    assert answer.status_code == 201, answer.json
    words = ["good", "bad", "fine", "awful", "great", "poor", "the", "and"]
    items = [{"id": f"i{k}", "text": f"{words[k % 8]} {words[(k + 3) % 8]} the item {k}"} for k in range(40)]
    client.post("/v1/projects/mapped/items", json={"items": items})
    run_jobs()
    assert client.get("/v1/projects/mapped").json["counts"]["sentiment"]["ranking"]["strategy"] == "random"
    labels = [
        {"item": f"i{k}", "schema": "sentiment", "value": ["positive", "negative"][k % 2], "annotator": a}
        for k in range(24)  # enough of each class that calibration would have run
        for a in ("x", "y")
    ]
    client.post("/v1/projects/mapped/labels", json={"labels": labels})
    run_jobs()
    model = client.get("/v1/projects/mapped/models?schema=sentiment").json["models"][-1]
    assert model["temperature"] == 1.0  # not calibrated
    ranking = client.get("/v1/projects/mapped/ranking?schema=sentiment&limit=40").json
    assert ranking["strategy"] == "uncertainty"
    ranked = [it for it in ranking["items"] if it["score"] > 0]
    assert len(ranked) == 10  # only the sampled ten were scored; the rest follow at random
    from redis import Redis

    from workers.features import CachedPart
    from workers.store import Store

    store = Store(Redis.from_url(client.application.config["REDIS_URL"]))
    words_part = CachedPart.from_bytes(store.feature_rows("mapped", "words"))
    assert words_part.rows.shape[1] == 5 and "the" not in words_part.state["terms"]
    assert words_part.state["params"]["stop_words"] == "english"


# --- Potato's webhooks, as a real Potato 2.12.1 sent them ------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "potato-2.12.1-webhooks.jsonl"
"""Deliveries a real Potato 2.12.1 sent to a capturing endpoint whose secret was ``s3cret``:
a login, an annotation created (ham) and updated (spam) by user ana on sms-00001, and the
item.fully_annotated events after each."""


SMS_CONFIG = (
    "annotation_task_name: sms\n"
    "annotation_schemes:\n  - {annotation_type: radio, name: label, labels: [ham, spam]}\n"
)


def deliveries() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_potatos_real_signatures_are_verified():
    for d in deliveries():
        h = d["headers"]
        body = d["body"].encode()
        assert signature_matches(
            "s3cret", h["Webhook-Id"], h["Webhook-Timestamp"], body, h["Webhook-Signature"]
        )
        assert not signature_matches(
            "other", h["Webhook-Id"], h["Webhook-Timestamp"], body, h["Webhook-Signature"]
        )
        assert not signature_matches(
            "s3cret", h["Webhook-Id"], h["Webhook-Timestamp"], body + b" ", h["Webhook-Signature"]
        )


def sign(secret: str, body: bytes, webhook_id: str = "msg_1", timestamp: int | None = None) -> dict:
    """Headers as Potato builds them (potato/webhooks/signing.py)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


def test_potato_annotations_become_labels(client, anonymous, run_jobs):
    sms = create(client, SMS_CONFIG).json
    client.post(
        "/v1/projects/sms/items",
        json={"items": [{"id": "sms-00001", "text": "Ok lar... Joking wif u oni..."}]},
    )
    endpoint = client.get("/v1/projects/sms").json["potato"]
    assert endpoint["webhook_url"].endswith("/potato/sms/webhook")
    secret = endpoint["webhook_secret"]
    path = "/potato/sms/webhook"
    seen = []
    for d in deliveries():  # the real bodies, signed with the project's secret as Potato would
        body = d["body"].encode()
        answer = anonymous.post(path, data=body, headers=sign(secret, body))
        assert answer.status_code == 200, answer.json
        seen.append(answer.json)
        if json.loads(body)["event"] == "annotation.created":
            assert client.get("/v1/projects/sms/items/sms-00001").json["labels"]["label"] == {"ana": "ham"}
    assert [a.get("ignored", False) for a in seen] == [True, False, True, False, True]
    assert client.get("/v1/projects/sms/items/sms-00001").json["labels"]["label"] == {"ana": "spam"}
    assert sms["api_key"]["role"] == "manager"


def test_unsigned_stale_or_foreign_deliveries_are_refused(client, anonymous):
    create(client, SMS_CONFIG, name="signed")
    secret = client.get("/v1/projects/signed").json["potato"]["webhook_secret"]
    body = deliveries()[1]["body"].encode()
    path = "/potato/signed/webhook"
    assert anonymous.post(path, data=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert anonymous.post(path, data=body, headers=sign("s3cret", body)).status_code == 401
    stale = anonymous.post(path, data=body, headers=sign(secret, body, timestamp=int(time.time()) - 3600))
    assert stale.status_code == 401 and "five minutes" in stale.json["detail"]
    missing = anonymous.post("/potato/nope/webhook", data=body, headers=sign(secret, body))
    assert missing.status_code == 401  # no hint whether the project exists
    # an item alrank does not have yet: refused, so Potato delivers it again later
    unknown = anonymous.post(path, data=body, headers=sign(secret, body))
    assert unknown.status_code == 422 and "sms-00001" in unknown.json["detail"]
    client.delete("/v1/projects/signed/potato")
    assert anonymous.post(path, data=body, headers=sign(secret, body)).status_code == 401


def test_choices_alrank_does_not_know_are_left_out_with_the_reason():
    project = {"name": "p", "schemas": [{"name": "topics", "labels": ["a", "b", "c"], "multi_label": True}]}
    data = {
        "user_id": "ana",
        "instance_id": "7",
        "annotations": {
            "topics:::a": "true",
            "topics:::c": "true",
            "topics:::z": "true",
            "mood:::x": "true",
            "topics": "true",
        },
    }
    labels, skipped = webhook_labels(project, data)
    assert labels == [{"item": "7", "schema": "topics", "value": ["a", "c"], "annotator": "ana"}]
    assert any("'z' is not a label" in s for s in skipped) and any("no schema 'mood'" in s for s in skipped)


def test_each_ranking_feeds_its_head_to_potatos_data_directory(client, run_jobs, tmp_path):
    """After each published ranking the items Potato has not been given yet are written as
    one new file, each with an alrank_priority above every earlier file's, best first."""
    create(client, SMS_CONFIG, name="fed")
    words = ["free", "prize", "call", "lunch", "later", "home", "txt", "win"]
    items = [{"id": f"m{k}", "text": f"{words[k % 8]} {words[(k * 3) % 8]} msg {k}"} for k in range(60)]
    client.post("/v1/projects/fed/items", json={"items": items})
    patched = client.patch(
        "/v1/projects/fed",
        json={
            "potato": {"data_directory": str(tmp_path), "head": 10},
            "active_learning": {
                "min_instances_for_training": 4,
                "update_frequency": 4,
                "vectorizer_name": "tfidf",
            },
        },
    )
    assert patched.status_code == 200, patched.json
    run_jobs()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert [f.name for f in files] == ["alrank-fed-000001.jsonl"]
    first = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(first) == 10
    # the evaluation sample and the exploration share at their shares of the labels to come
    # (10% and 35% of the first 10: 1 and 3), the ranking's order in between
    sources = [r["alrank_source"] for r in first]
    assert sources.count("evaluation") == 1 and sources.count("random") == 3
    top = client.get("/v1/projects/fed/ranking?schema=label&limit=40").json["items"]
    ranked = [r["id"] for r in first if r["alrank_source"] == "ranking"]
    drawn = {r["id"] for r in first if r["alrank_source"] == "random"}
    assert ranked == [t["id"] for t in top if t["id"] not in drawn][: len(ranked)]
    evaluation = next(r["id"] for r in first if r["alrank_source"] == "evaluation")
    assert evaluation not in {t["id"] for t in top}  # the evaluation sample is never ranked
    assert [r["alrank_priority"] for r in first] == sorted(
        (r["alrank_priority"] for r in first), reverse=True
    )
    labels = [
        {"item": r["id"], "schema": "label", "value": ["ham", "spam"][k % 2], "annotator": "ana"}
        for k, r in enumerate(first[:4])
    ]
    client.post("/v1/projects/fed/labels", json={"labels": labels})
    run_jobs()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 2
    second = [json.loads(line) for line in files[1].read_text().splitlines()]
    assert not {r["id"] for r in second} & {r["id"] for r in first}  # Potato has those already
    assert min(r["alrank_priority"] for r in second) > max(r["alrank_priority"] for r in first)
    fresh_top = client.get("/v1/projects/fed/ranking?schema=label&limit=40").json["items"]
    given = {r["id"] for r in first}
    drawn = {r["id"] for r in second if r["alrank_source"] == "random"}
    second_ranked = [r["id"] for r in second if r["alrank_source"] == "ranking"]
    assert second_ranked[0] == next(t["id"] for t in fresh_top if t["id"] not in given | drawn)
    feed = client.get("/v1/projects/fed").json["potato"]["feed"]
    assert feed["state"] == "done" and feed["file"] == files[1].name and feed["written"] == 10
    assert not list(tmp_path.glob(".*"))  # no half-written file left behind


def test_a_feed_that_cannot_write_says_so(client, run_jobs, tmp_path):
    create(client, SMS_CONFIG, name="nowhere")
    client.post(
        "/v1/projects/nowhere/items", json={"items": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]}
    )
    client.patch("/v1/projects/nowhere", json={"potato": {"data_directory": str(tmp_path / "missing")}})
    run_jobs()
    feed = client.get("/v1/projects/nowhere").json["potato"]["feed"]
    assert feed["state"] == "failed" and "missing" in feed["error"]


SENTIMENT_WORDS = {
    "positive": "great lovely superb",
    "negative": "awful broken poor",
    "neutral": "okay plain fine",
}


def label_a_sentiment_batch(client, run_jobs, project: str) -> None:
    """Upload 60 texts whose words give their sentiment, label the first batch of 12 that
    ``GET /next`` hands out with the truth, and run the retrain that follows."""
    words = SENTIMENT_WORDS
    items = [{"id": f"r{k}", "text": f"{list(words.values())[k % 3]} item {k}"} for k in range(60)]
    assert client.post(f"/v1/projects/{project}/items", json={"items": items}).status_code == 200
    run_jobs()
    batch = client.get(f"/v1/projects/{project}/next?schema=sentiment&annotator=ana&size=12").json["items"]
    labels = [
        {
            "item": it["id"],
            "schema": "sentiment",
            "annotator": "ana",
            "value": list(words)[int(it["id"][1:]) % 3],
        }
        for it in batch
    ]
    assert client.post(f"/v1/projects/{project}/labels", json={"labels": labels}).status_code == 200
    run_jobs()


def test_a_potato_multinomial_nb_trains_as_multinomial_naive_bayes(client, redis_conn, run_jobs):
    """Potato's MultinomialNB with its classifier_kwargs is alrank's multinomial_nb: the
    served model's intercepts are the log class priors of its training labels (complement
    naive Bayes has none), and it ranks and predicts through the service."""
    from workers.models import load_model
    from workers.store import Store

    block = {
        "classifier_name": "sklearn.naive_bayes.MultinomialNB",
        "classifier_kwargs": {"alpha": 0.5},
        "vectorizer_name": "sklearn.feature_extraction.text.TfidfVectorizer",
        "min_instances_for_training": 6,
        "update_frequency": 6,
        "eval_fraction": 0.0,
    }
    answer = create(client, HEAD + yaml.safe_dump({"active_learning": block}), name="nb")
    assert answer.status_code == 201, answer.json
    al = answer.json["active_learning"]
    assert al["classifier_name"] == "multinomial_nb" and al["classifier_params"] == {"alpha": 0.5}
    label_a_sentiment_batch(client, run_jobs, "nb")
    latest = client.get("/v1/projects/nb/models?schema=sentiment").json["models"][-1]
    model = load_model(Store(redis_conn).model_state("nb", "sentiment", latest["version"]))
    counts = latest["class_counts"]  # the labels the served model learned from
    priors = np.log([counts[c] / latest["served_training_size"] for c in model.classes])
    np.testing.assert_allclose(model.intercept, priors, rtol=1e-6)
    r = client.post(
        "/v1/projects/nb/predict?schema=sentiment", json={"items": [{"id": "n", "text": "awful"}]}
    )
    assert r.status_code == 200, r.json
    assert r.json["predictions"][0]["label"] == "negative"


def test_a_potato_random_forest_trains_as_a_forest_with_its_kwargs(client, redis_conn, run_jobs):
    """Potato's RandomForestClassifier with its classifier_kwargs is alrank's random_forest:
    the served model is a forest of the trees and depth the config names, it ranks with
    BALD on its own trees, and it predicts through the service."""
    from workers.models import load_model
    from workers.store import Store
    from workers.trees import TreeModel

    block = {
        "classifier_name": "sklearn.ensemble.RandomForestClassifier",
        "classifier_kwargs": {"n_estimators": 30, "max_depth": 6, "n_jobs": -1},
        "query_strategy": "bald",
        "min_instances_for_training": 6,
        "update_frequency": 6,
        "eval_fraction": 0.0,
    }
    answer = create(client, HEAD + yaml.safe_dump({"active_learning": block}), name="rf")
    assert answer.status_code == 201, answer.json
    al = answer.json["active_learning"]
    assert al["classifier_name"] == "random_forest"
    assert al["classifier_params"] == {"n_estimators": 30, "max_depth": 6}
    assert any("n_jobs" in note for note in answer.json["notes"])
    label_a_sentiment_batch(client, run_jobs, "rf")
    latest = client.get("/v1/projects/rf/models?schema=sentiment").json["models"][-1]
    assert latest["classifier"] == "random_forest"
    model = load_model(Store(redis_conn).model_state("rf", "sentiment", latest["version"]))
    assert isinstance(model, TreeModel)
    assert len(model.estimator.estimators_) == 30 and model.estimator.max_depth == 6
    served = client.get("/v1/projects/rf/next?schema=sentiment&annotator=bo&size=4").json
    assert served["strategy"] == "bald" and served["model_version"] == latest["version"]
    r = client.post(
        "/v1/projects/rf/predict?schema=sentiment", json={"items": [{"id": "n", "text": "awful"}]}
    )
    assert r.status_code == 200, r.json
    assert r.json["predictions"][0]["label"] == "negative"
