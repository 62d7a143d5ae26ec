"""Label quality: agreement figures, Dawid-Skene, label issues, and the overlap and review
queues that send labelled items to another annotator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from alrank.cli import main as cli_main
from workers.aggregation import dawid_skene, resolve
from workers.agreement import agreement, fleiss_kappa, krippendorff_alpha

SCHEMA = "digit"
DIGITS = [str(i) for i in range(10)]


# -- the figures, against values computed by hand or published --------------------------


def test_cohen_kappa_matches_the_hand_computed_value():
    # agreement 7/10; chance 0.6 x 0.5 + 0.4 x 0.5 = 0.5; kappa (0.7 - 0.5) / 0.5 = 0.4
    a = "y y y n n y n y y n".split()
    b = "y n y n n y y y n n".split()
    votes = {f"i{k}": {"ana": x, "ben": y} for k, (x, y) in enumerate(zip(a, b, strict=True))}
    found = agreement(votes)
    assert found["pairs"] == [{"annotators": ["ana", "ben"], "items": 10, "cohen_kappa": 0.4}]
    assert found["overlapped_items"] == 10
    # ana against the others' majority (ben alone) is the same pair
    assert found["per_annotator"]["ana"]["agreement"] == 0.7
    assert found["per_annotator"]["ana"]["cohen_kappa"] == 0.4


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as Wikipedia works it: 10 subjects, 14 raters, 5 categories; kappa 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    items = [[str(c) for c, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=1e-4)


def test_krippendorff_alpha_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal data of
    # 4 coders on 12 units with gaps: alpha 0.743 (the last unit has one value and drops out)
    rows = {
        "A": "1 2 3 3 2 1 4 1 2 . . .",
        "B": "1 2 3 3 2 2 4 1 2 5 . 3",
        "C": ". 3 3 3 2 3 4 2 2 5 1 .",
        "D": "1 2 3 3 2 4 4 1 2 5 1 .",
    }
    votes: dict[str, dict[str, str]] = {}
    for coder, line in rows.items():
        for unit, value in enumerate(line.split()):
            if value != ".":
                votes.setdefault(f"u{unit}", {})[coder] = value
    assert krippendorff_alpha(votes, sorted(rows)) == pytest.approx(0.743, abs=1e-3)
    assert agreement(votes)["krippendorff_alpha"] == pytest.approx(0.743, abs=1e-3)


def planted(seed: int, items: int = 400) -> tuple[dict, list[str]]:
    """Two annotators per item from four: two careful, one fair, one answering at random."""
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    accuracy = {"careful1": 0.92, "careful2": 0.9, "fair": 0.8, "random": 0.0}
    truth = rng.integers(0, 3, items)
    votes = {}
    for k, t in enumerate(truth):
        pair = rng.choice(sorted(accuracy), size=2, replace=False)
        votes[f"i{k}"] = {
            str(a): labels[t] if rng.random() < accuracy[a] else labels[rng.integers(0, 3)] for a in pair
        }
    return votes, [labels[t] for t in truth]


@pytest.mark.parametrize("seed", range(3))
def test_dawid_skene_finds_the_random_annotator_and_outvotes_them(seed):
    votes, truth = planted(seed)
    found = dawid_skene(votes, ["a", "b", "c"], False)
    assert min(found.reliability, key=found.reliability.get) == "random"
    assert found.reliability["random"] < 0.45 < 0.75 < found.reliability["careful1"]
    ds = np.mean([found.labels[f"i{k}"] == t for k, t in enumerate(truth)])
    majority = resolve(votes, ["a", "b", "c"], False)
    mv = np.mean([majority[f"i{k}"] == t for k, t in enumerate(truth)])
    assert ds > mv + 0.05, (ds, mv)
    # as a resolution strategy, the same labels
    assert resolve(votes, ["a", "b", "c"], False, "dawid_skene") == found.labels


def test_dawid_skene_multi_label_runs_label_by_label():
    votes, _ = planted(0, 300)
    as_sets = {i: {a: [v] for a, v in by.items()} for i, by in votes.items()}
    found = dawid_skene(as_sets, ["a", "b", "c"], True)
    assert min(found.reliability, key=found.reliability.get) == "random"
    assert all(isinstance(v, list) for v in found.labels.values())


def test_a_tie_goes_to_the_most_recent_label():
    votes = {"i": {"ana": "a", "ben": "b"}}
    assert resolve(votes, ["a", "b"], False) == {"i": "a"}  # no times: the schema's order
    assert resolve(votes, ["a", "b"], False, times={"i": {"ana": 1, "ben": 2}}) == {"i": "b"}
    assert resolve(votes, ["a", "b"], False, times={"i": {"ana": 2, "ben": 1}}) == {"i": "a"}
    multi = {"i": {"ana": ["a"], "ben": ["b"]}}
    assert resolve(multi, ["a", "b"], True, times={"i": {"ana": 1, "ben": 2}}) == {"i": ["b"]}


# -- through the service -----------------------------------------------------------------


@pytest.fixture
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:500].astype(np.float32), [str(v) for v in y[:500]]


def make_project(client, **al):
    body = {
        "name": "digits",
        "schemas": [{"name": SCHEMA, "labels": DIGITS}],
        "active_learning": {
            "query_strategy": "uncertainty",
            "min_instances_for_training": 30,
            "update_frequency": 20,
            "eval_fraction": 0.0,
            "random_sample_percent": 0.0,
            "classifier_name": "logistic_regression",
            **al,
        },
    }
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.json


def upload(client, x):
    items = [{"id": f"d{i}", "vector": x[i].tolist()} for i in range(len(x))]
    assert client.post("/v1/projects/digits/items", json={"items": items}).status_code == 200


def send(client, pairs, annotator, **extra):
    labels = [{"item": i, "schema": SCHEMA, "value": v, "annotator": annotator, **extra} for i, v in pairs]
    return client.post("/v1/projects/digits/labels", json={"labels": labels})


def batch(client, annotator, size=10):
    r = client.get(f"/v1/projects/digits/next?schema={SCHEMA}&annotator={annotator}&size={size}")
    assert r.status_code == 200, r.json
    return r.json["items"]


FLIPPED = {f"d{i}" for i in range(0, 300, 15)}


def flipped_labels(y):
    """The first 300 items' labels, every 15th changed to the next digit."""
    return [(f"d{i}", str((int(y[i]) + 1) % 10) if f"d{i}" in FLIPPED else y[i]) for i in range(300)]


def issues_of_planted_flips(client, run_jobs, digits, **al) -> dict:
    """The label issues a retrain lists after ana labels the first 300 items, some flipped."""
    x, y = digits
    make_project(client, **al)
    upload(client, x)
    assert send(client, flipped_labels(y), "ana").status_code == 200
    run_jobs()
    return client.get(f"/v1/projects/digits/label-issues?schema={SCHEMA}&limit=1000").json


def test_planted_flipped_labels_are_flagged_and_sent_for_review(client, run_jobs, digits):
    y = digits[1]
    found = issues_of_planted_flips(client, run_jobs, digits, review_share=0.3, review_min_score=0.0)
    assert found["status"] == "found" and found["checked"] == 300
    flagged = {i["item"] for i in found["issues"]}
    assert len(flagged & FLIPPED) >= 0.8 * len(FLIPPED), found["issues"][:5]
    # most flagged labels are planted ones: 1 in 15 is, among all
    assert len(flagged & FLIPPED) >= 0.4 * len(flagged)
    top = found["issues"][0]
    assert top["score"] >= found["issues"][-1]["score"]
    first = next(i for i in found["issues"] if i["item"] in FLIPPED)
    assert first["suggested"] == y[int(first["item"][1:])] and first["annotators"] == {"ana": first["given"]}
    assert found["queued_for_review"] == len(flagged)
    # the review share never goes back to the annotator who gave the label
    assert all(it["source"] != "review" for it in batch(client, "ana", 20))
    review = [it for it in batch(client, "ben", 10) if it["source"] == "review"]
    assert len(review) == 3
    assert {it["id"] for it in review} <= flagged
    # ... nor to someone else once ben holds them
    assert not {it["id"] for it in batch(client, "cy", 10) if it["source"] == "review"} & {
        it["id"] for it in review
    }
    # handed out, an issue is still waiting for its second opinion; answered, it is not
    held = {it["id"] for it in review}

    def listed() -> dict:
        return client.get(f"/v1/projects/digits/label-issues?schema={SCHEMA}&limit=1000").json

    assert {i["item"] for i in listed()["issues"] if i["queued_for_review"]} == flagged
    answered = sorted(held)[0]
    assert send(client, [(answered, y[int(answered[1:])])], "ben").status_code == 200
    after = listed()
    assert after["queued_for_review"] == len(flagged) - 1
    assert {i["item"] for i in after["issues"] if i["queued_for_review"]} == flagged - {answered}


def test_review_sends_only_the_issues_scored_at_least_review_min_score(client, run_jobs, digits):
    found = issues_of_planted_flips(client, run_jobs, digits, review_share=0.5, review_min_score=0.9)
    sure = {i["item"] for i in found["issues"] if i["score"] >= 0.9}
    assert 0 < len(sure) < len(found["issues"]), [i["score"] for i in found["issues"]]
    assert found["queued_for_review"] == len(sure)
    assert all(i["queued_for_review"] == (i["item"] in sure) for i in found["issues"])
    # the share the doubted issues leave goes to the ranking: the batch is still full
    items = batch(client, "ben", 2 * len(found["issues"]))
    assert len(items) == 2 * len(found["issues"])
    assert {it["id"] for it in items if it["source"] == "review"} == sure


@pytest.mark.parametrize("score", [-0.1, 1.5])
def test_a_review_min_score_outside_0_to_1_is_refused(client, score):
    r = client.post(
        "/v1/projects",
        json={
            "name": "p",
            "schemas": [{"name": SCHEMA, "labels": DIGITS}],
            "active_learning": {"review_min_score": score},
        },
    )
    assert r.status_code == 422 and "review_min_score" in r.json["detail"]


def test_a_review_answer_replaces_the_label_and_bad_answers_change_nothing(
    client, run_jobs, digits, redis_conn
):
    x, y = digits
    make_project(client, review_share=1.0, update_frequency=1000)
    upload(client, x)
    send(client, flipped_labels(y), "ana")
    client.post(f"/v1/projects/digits/train?schema={SCHEMA}")
    run_jobs()
    item = next(it for it in batch(client, "ben", 5) if it["id"] in FLIPPED)
    wrong, right = str((int(y[int(item["id"][1:])]) + 1) % 10), y[int(item["id"][1:])]
    # the original annotator cannot answer their own item's review; nothing is stored
    refused = send(client, [(item["id"], right), ("d301", "1")], "ana", source="review")
    assert refused.status_code == 409 and "ana" in refused.json["detail"]
    # an unknown label is refused too
    assert send(client, [(item["id"], "eleven")], "ben", source="review").status_code == 422
    listed = client.get(f"/v1/projects/digits/labels?schema={SCHEMA}&limit=1000").json["labels"]
    assert {(r["item"], r["annotator"], r["value"]) for r in listed if r["item"] == item["id"]} == {
        (item["id"], "ana", wrong)
    }
    assert not any(r["item"] == "d301" for r in listed)
    # ben's answer wins the one-to-one tie: the newest label decides
    assert send(client, [(item["id"], right)], "ben", source="review").status_code == 200
    client.post(f"/v1/projects/digits/train?schema={SCHEMA}")
    run_jobs()
    from workers.snapshot import load_pool, snapshot, training_set
    from workers.store import Store

    store = Store(redis_conn)
    snap = snapshot(store, "digits", SCHEMA)
    pool = load_pool(store, snap)
    labelled = training_set(snap, pool)
    row = pool.ids.index(item["id"])
    assert labelled.targets[labelled.rows.index(row)] == right
    # answered: it leaves the review queue and the list of issues waiting for review
    assert item["id"] not in store.queue_items("digits", SCHEMA, "review")
    quality = client.get(f"/v1/projects/digits/metrics?schema={SCHEMA}").json["agreement"]
    assert quality["overlapped_items"] == 1
    assert quality["per_annotator"]["ben"]["overlapped_items"] == 1


def test_overlap_goes_to_another_annotator_and_feeds_agreement(client, run_jobs, digits, capsys):
    x, y = digits
    make_project(client, overlap_share=0.5, update_frequency=40)
    upload(client, x)
    send(client, [(f"d{i}", y[i]) for i in range(100)], "ana")
    run_jobs()
    mine = batch(client, "ana", 10)
    assert all(it["source"] != "overlap" for it in mine)
    theirs = batch(client, "ben", 10)
    overlap = [it for it in theirs if it["source"] == "overlap"]
    assert len(overlap) == 5 and all(int(it["id"][1:]) < 100 for it in overlap)
    # ben agrees on four, disagrees on one
    answers = [(it["id"], y[int(it["id"][1:])]) for it in overlap]
    answers[0] = (answers[0][0], str((int(answers[0][1]) + 1) % 10))
    send(client, answers, "ben", source="overlap")
    # more labels from both, then a retrain assesses them
    for _ in range(4):
        more = batch(client, "ben", 10)
        send(client, [(it["id"], y[int(it["id"][1:])]) for it in more], "ben", source=None)
    client.post(f"/v1/projects/digits/train?schema={SCHEMA}")
    run_jobs()
    metrics = client.get(f"/v1/projects/digits/metrics?schema={SCHEMA}").json
    ag = metrics["agreement"]
    assert ag["overlapped_items"] >= 5
    assert ag["per_annotator"]["ana"]["overlapped_items"] == ag["overlapped_items"]
    assert ag["per_annotator"]["ben"]["reliability"] is not None
    # an overlap item never goes back to an annotator who labelled it
    for annotator in ("ana", "ben"):
        again = batch(client, annotator, 20)
        assert not {it["id"] for it in again if it["source"] == "overlap"} & {i for i, _ in answers}


def test_shares_that_add_up_to_more_than_a_batch_are_refused(client):
    body = {
        "name": "too-much",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"random_sample_percent": 0.5, "eval_fraction": 0.2, "review_share": 0.4},
    }
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 422 and "review_share" in r.json["detail"]


def test_the_cli_lists_label_issues_and_agreement(client, run_jobs, digits, capsys, monkeypatch):
    x, y = digits
    make_project(client, resolution_strategy="dawid_skene")
    upload(client, x)
    send(client, flipped_labels(y), "ana")
    run_jobs()

    class Answers:
        """The client's calls, answered by the test app."""

        def __init__(self, *args) -> None:
            pass

        def label_issues(self, project, schema, limit):
            return client.get(f"/v1/projects/{project}/label-issues?schema={schema}&limit={limit}").json

        def metrics(self, project, schema):
            return client.get(f"/v1/projects/{project}/metrics?schema={schema}").json

    monkeypatch.setattr("alrank.cli.Client", Answers)
    assert cli_main(["label-issues", "digits", "--schema", SCHEMA, "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "labels flagged" in out and "suggested" in out and len(out.strip().splitlines()) == 5
    assert cli_main(["metrics", "digits", "--schema", SCHEMA]) == 0
    assert "agreement: no item labelled by two annotators yet" in capsys.readouterr().out


def _fit_predict(labels: list[str], multi: bool):
    """fit(x, targets) -> predict_proba on the full label list, with scikit-learn."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    def fit(x, targets):
        if multi:
            binarizer = MultiLabelBinarizer(classes=labels)
            model = OneVsRestClassifier(LogisticRegression(max_iter=500)).fit(
                x, binarizer.fit_transform(targets)
            )
            return model.predict_proba
        model = LogisticRegression(max_iter=500).fit(x, targets)

        def proba(xe):
            out = np.zeros((len(xe), len(labels)))
            out[:, [labels.index(c) for c in model.classes_]] = model.predict_proba(xe)
            return out

        return proba

    return fit


def test_label_issues_find_a_planted_flip_in_a_multi_label_schema():
    from workers.label_issues import find_issues

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    labels = ["p", "q"]
    targets = [[lab for lab, on in zip(labels, (row[0] > 0, row[1] > 0), strict=True) if on] for row in x]
    ids = [f"i{k}" for k in range(300)]
    # three items far from both boundaries, each with one label turned the other way
    flipped = [int(k) for k in np.flatnonzero((np.abs(x[:, 0]) > 1) & (np.abs(x[:, 1]) > 1))[:3]]
    for k in flipped:
        targets[k] = ["q"] if targets[k] == ["p"] else ["p"]
    found = find_issues(_fit_predict(labels, True), x, ids, targets, labels, True, seed=1)
    assert found is not None
    top = {issue.item for issue in found[:10]}
    assert {f"i{k}" for k in flipped} <= top
    assert all(isinstance(issue.suggested, list) for issue in found)


def test_label_issues_need_enough_labels_of_two_classes():
    from workers.label_issues import find_issues

    x = np.arange(20, dtype=float).reshape(-1, 1)
    fit = _fit_predict(["a", "b"], False)
    assert find_issues(fit, x[:8], [f"i{k}" for k in range(8)], ["a", "b"] * 4, ["a", "b"], False, 0) is None
    assert find_issues(fit, x, [f"i{k}" for k in range(20)], ["a"] * 20, ["a", "b"], False, 0) is None


def test_an_item_short_of_its_annotators_comes_to_the_next_one_as_overlap(client, run_jobs, digits):
    x, y = digits
    make_project(client, min_annotations_per_instance=2)
    upload(client, x)
    run_jobs()
    first = batch(client, "ana", 5)
    assert {it["source"] for it in first} <= {"ranking", "fallback"}
    send(client, [(it["id"], y[int(it["id"][1:])]) for it in first], "ana")
    second = batch(client, "ben", 5)
    assert [it["id"] for it in second] == [it["id"] for it in first]
    assert {it["source"] for it in second} == {"overlap"}
    # and never back to ana
    assert not {it["id"] for it in batch(client, "ana", 10)} & {it["id"] for it in first}


def test_a_batch_looks_at_a_bounded_stretch_of_a_queue(client, run_jobs, digits, redis_conn):
    """The overlap queue of a project where ana labelled everything: ana's batches pass over
    it without walking all of it, and ben still gets its items first."""
    from workers.store import Store

    x, y = digits
    make_project(client, overlap_share=0.5, update_frequency=1000)
    upload(client, x)
    send(client, [(f"d{i}", y[i]) for i in range(400)], "ana")
    client.post(f"/v1/projects/digits/train?schema={SCHEMA}")
    run_jobs()
    store = Store(redis_conn)
    queued = store.queue_items("digits", SCHEMA, "overlap")
    assert len(queued) == 400
    # count the reads one batch makes: bounded by the scan, not by the queue's length
    # (walking the whole queue takes four reads an item, 1,600 here)
    redis_conn.execute_command("CONFIG", "RESETSTAT")
    assert all(it["source"] != "overlap" for it in batch(client, "ana", 10))
    stats = redis_conn.info("commandstats")
    reads = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_hget", "cmdstat_hexists"))
    assert reads < 400, reads
    theirs = [it for it in batch(client, "ben", 10) if it["source"] == "overlap"]
    assert [it["id"] for it in theirs] == queued[:5]
