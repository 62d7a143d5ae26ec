"""The evaluation sample, its intervals, the gain over random and the stopping signal."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from workers import defaults
from workers.batches import share
from workers.evaluation import bootstrap_macro_f1, macro_f1, wilson
from workers.gain import (
    estimate,
    fit_log_law,
    fit_power_law,
    gain_over_random,
    labels_for,
    labels_for_log,
    read_back,
)
from workers.stopping import agreement_with_support, stopping, stopping_signal
from workers.store import Store
from workers.tool_order import compose


def test_stopping_signal_needs_three_stable_versions():
    stable = [{"version": i, "stop_kappa": k} for i, k in enumerate([None, 0.995, 0.999, 1.0], 1)]
    assert stopping_signal(stable)[0] is True
    shaky = [*stable[:-1], {"version": 4, "stop_kappa": 0.9}]
    stop, reason = stopping_signal(shaky)
    assert stop is False and "0.900" in reason
    assert stopping_signal(stable[:3])[0] is False  # too few versions to tell


def test_the_stopping_signal_says_how_sure_it_is():
    """Certainty is the share of stop-set resamples that keep the verdict: kappas far above
    the threshold give 1, kappas at it give about a coin toss."""
    rng = np.random.default_rng(0)
    old = {str(i): str(rng.integers(3)) for i in range(2000)}
    same = dict(old)
    point, interval, support = agreement_with_support(old, same)
    assert point == 1.0 and support == 1.0 and interval == [1.0, 1.0]
    near = dict(old)
    for i in range(10):  # 0.5% changed: kappa about 0.9925, just above 0.99
        near[str(i)] = str((int(old[str(i)]) + 1) % 3)
    point, interval, support = agreement_with_support(old, near)
    assert 0.99 < point < 0.995 and interval[0] < 0.99 < interval[1] and 0.2 < support < 0.95
    versions = [
        {"version": v, "training_size": 10 * v, "stop_kappa": point, "stop_kappa_support": support}
        for v in range(1, 5)
    ]
    found = stopping(versions)
    assert found["should_stop"] is True
    assert abs(found["certainty"] - support**3) < 1e-9 and "certainty" in found["reason"]
    assert "Bloodgood" in found["criterion"] and len(found["kappas"]) == 3


def test_the_wilson_interval_matches_the_published_example_and_covers():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263
    lo, hi = wilson(81, 263)
    assert abs(lo - 0.2553) < 5e-4 and abs(hi - 0.3662) < 5e-4
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    rng = np.random.default_rng(1)
    for p, n in ((0.8, 50), (0.95, 100), (0.5, 300)):
        hits = rng.binomial(n, p, size=4000)
        covered = np.mean([lo <= p <= hi for lo, hi in (wilson(k, n) for k in hits)])
        assert 0.92 <= covered <= 0.98, (p, n, covered)


def test_the_bootstrap_macro_f1_interval_covers_the_population_value():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 200_000)
    # a classifier right 80% of the time, wrong answers spread over the other classes
    wrong = rng.random(truth.size) > 0.8
    pred = np.where(wrong, (truth + rng.integers(1, 3, truth.size)) % 3, truth)
    population = f1_score(truth, pred, average="macro")
    assert (
        abs(macro_f1(truth[:5000], pred[:5000], 3) - f1_score(truth[:5000], pred[:5000], average="macro"))
        < 1e-12
    )
    covered = 0
    for r in range(60):
        idx = rng.choice(truth.size, 150, replace=False)
        lo, hi = bootstrap_macro_f1(list(truth[idx]), list(pred[idx]), seed=r)
        covered += lo <= population <= hi
    assert covered >= 52  # 95% nominal; a percentile bootstrap runs a little short on 150


def test_the_power_law_is_read_backwards_exactly():
    sizes = np.array([10, 20, 40, 80, 160], dtype=float)
    a, b, c = 0.9, 1.2, 0.6
    params = fit_power_law(sizes, (a - b * sizes**-c)[None, :])
    assert np.allclose(params[0], [a, b, c], atol=0.03)
    target = a - b * 400.0**-c
    assert abs(labels_for(np.array([target]), params)[0] - 400) < 25
    assert labels_for(np.array([0.95]), params)[0] == np.inf  # above the curve's asymptote


def test_the_log_law_is_read_backwards_exactly():
    sizes = np.array([10, 20, 40, 80, 160], dtype=float)
    a, b = 0.35, 0.08
    params = fit_log_law(sizes, (a + b * np.log(sizes))[None, :])
    assert np.allclose(params[0], [a, b])
    target = a + b * np.log(400.0)
    assert labels_for_log(np.array([target]), params)[0] == pytest.approx(400)
    flat = fit_log_law(sizes, np.full((1, 5), 0.7))
    assert (
        labels_for_log(np.array([0.75]), flat)[0] == np.inf and labels_for_log(np.array([0.6]), flat)[0] == 0
    )


def test_the_interval_spans_both_shapes_of_the_curve():
    """Planted: random labelling's curve still climbing as a logarithm does at its last
    point. A power law fitted to it levels off and reads M far out; the logarithm reads it
    nearer, and the interval reaches down to it, so no saving is claimed that only the
    power law's shape supports."""
    rng = np.random.default_rng(5)
    n_eval, sizes = 1000, [10, 20, 40, 80, 160]
    rates = 0.3 + 0.08 * np.log(np.array(sizes, dtype=float))
    random_right = rng.random((2, len(sizes), n_eval)) < rates[None, :, None]
    served = rng.random(n_eval) < 0.3 + 0.08 * np.log(400.0)  # as random labelling at 400
    found = estimate(served, random_right, sizes, 400, 0, 120)
    n = np.array(sizes, dtype=float)
    power, log = read_back(np.array([served.mean()]), random_right.mean(axis=(0, 2))[None, :], n)
    assert log[0] < power[0]
    # the power law alone: its bootstrap's 2.5th percentile is past 400, a false "saving"
    boot = np.random.default_rng(0).integers(0, n_eval, size=(300, n_eval))
    curves = np.stack([random_right[:, :, b].mean(axis=(0, 2)) for b in boot])
    assert np.percentile(read_back(served[boot].mean(axis=1), curves, n)[0], 2.5) > 400
    lo, hi = found["interval"]
    assert lo is not None and lo <= 400 and (hi is None or hi >= 400)
    assert found["verdict"] == "undecided"


def test_no_verdict_from_an_evaluation_sample_that_cannot_tell_the_models_apart():
    """Near the ceiling a small evaluation sample may hold no item the served model and the
    curve's models disagree on. Without a pseudo-pair of discordant items the bootstrap
    saw no uncertainty and read random labelling as reaching the model with 10 labels:
    "not helping", for any model at all."""
    served = np.ones(40, dtype=bool)
    served[7] = False
    random_right = np.ones((2, 5, 40), dtype=bool)
    random_right[:, :, 7] = False  # every model wrong on the same one item
    found = estimate(served, random_right, [10, 20, 40, 80, 160], 300, 0, 100)
    assert found["verdict"] == "undecided" and found["interval"][1] is None
    assert found["accuracy"] == 39 / 40 and found["evaluation_size"] == 40


def test_a_served_model_beyond_random_reach_is_saving():
    """Planted: the served model is right on every evaluation item, random labelling's
    models on about 70% of them and hardly improving: the labels saved are beyond the cap."""
    rng = np.random.default_rng(3)
    n_eval, sizes = 300, [10, 20, 40, 80, 160]
    random_right = rng.random((2, len(sizes), n_eval)) < np.array([0.6, 0.65, 0.68, 0.7, 0.71])[None, :, None]
    found = estimate(np.ones(n_eval, dtype=bool), random_right, sizes, 200, 0, 120)
    # beyond what the curve can tell: "more than" its cap, never a made-up number
    assert found["verdict"] == "saving" and found["interval"] == [None, None]
    assert f"more than {found['cap']:,}" in found["statement"] and "saving over" in found["statement"]
    # a served model below what 10 random labels give
    worse = estimate(rng.random(n_eval) < 0.55, random_right, sizes, 200, 0, 120)
    assert worse["verdict"] == "not_helping" and worse["interval"][1] < 200


def _fit(xl, targets):
    if len(set(targets)) < 2:
        return None
    model = LogisticRegression(max_iter=500).fit(xl, targets)
    return lambda xe: model.predict(xe).tolist()


def test_the_gain_estimate_covers_the_true_random_curve():
    """On a simulated pool whose random learning curve is measured on a large test set, the
    estimate's 95% interval covers the labels random labelling truly needs to reach the
    served model's accuracy on most runs."""
    x, y = make_classification(
        n_samples=14000, n_features=20, n_informative=8, n_classes=3, flip_y=0.05, random_state=0
    )
    labels = y.astype(str)
    test = np.arange(10000, 14000)
    rng = np.random.default_rng(4)

    def test_accuracy(rows) -> float:
        return float(np.mean(np.array(_fit(x[rows], list(labels[rows]))(x[test])) == labels[test]))

    grid = [20, 50, 100, 150, 200, 300, 400, 600, 900]
    curve = [np.mean([test_accuracy(rng.choice(10000, n, replace=False)) for _ in range(8)]) for n in grid]
    covered, runs = 0, 12
    for seed in range(runs):
        order = np.random.default_rng(seed).permutation(10000)
        served_rows, evaluation = order[:200], order[200:500]
        served = _fit(x[served_rows], list(labels[served_rows]))
        truth_m = float(np.interp(test_accuracy(served_rows), curve, grid))
        drawn = served_rows[:70]  # the exploration share's uniform draws among its labels
        found = gain_over_random(
            _fit,
            x[drawn],
            list(labels[drawn]),
            x[evaluation],
            list(labels[evaluation]),
            served(x[evaluation]),
            200,
            seed,
            10,
        )
        lo, hi = found["interval"]
        covered += (lo is None or lo <= truth_m) and (hi is None or truth_m <= hi)
    assert covered >= 9, covered


def test_the_tool_order_holds_the_shares_of_the_labels_to_come():
    ranked = [f"r{i}" for i in range(100)]
    drawn = [f"x{i}" for i in range(100)]
    sample = [f"e{i}" for i in range(100)]
    for start in (0, 7, 13):
        placed = compose(ranked, drawn, sample, start, 40, 0.1, 0.35)
        sources = [s for _, s in placed]
        # exact to within the one position two shares may ask for at once
        assert sources.count("evaluation") == share(start, 40, 0.1)
        assert share(start, 40, 0.35) - 1 <= sources.count("random") <= share(start, 40, 0.35)
        # the ranking's order between them, from its top
        assert [i for i, s in placed if s == "ranking"] == ranked[: sources.count("ranking")]
    # a dry evaluation sample gives its positions to the ranking
    assert [s for _, s in compose(ranked, [], [], 0, 20, 0.5, 0.0)] == ["ranking"] * 20


def label(client, batch, y):
    labels = [
        {"item": it["id"], "schema": "digit", "value": str(y[int(it["id"][1:])]), "annotator": "a"}
        for it in batch["items"]
    ]
    client.post("/v1/projects/d/labels", json={"labels": labels})


def test_the_evaluation_sample_is_drawn_once_and_measures_every_version(client, run_jobs, redis_conn):
    x, y = load_digits(return_X_y=True)
    body = {
        "name": "d",
        "schemas": [{"name": "digit", "labels": [str(i) for i in range(10)]}],
        "active_learning": {
            # the sample, not the model, is under test: the cheapest model
            "classifier_name": "logistic_regression",
            "min_instances_for_training": 20,
            "update_frequency": 20,
            "eval_fraction": 0.25,
            "eval_size": 30,
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"d{i}", "vector": x[i].tolist()} for i in range(600)]
    client.post("/v1/projects/d/items", json={"items": items})
    run_jobs()
    store = Store(redis_conn)
    sample = store.eval_sample("d", "digit")
    assert len(sample) == 30 and len(set(sample)) == 30  # drawn before anything is ranked
    assert store.ranking_meta("d", "digit")["ranked"] == 570
    order = {i for i, _ in store.ranking_head("d", "digit", 1000)[1]}
    assert len(order) == 570 and not order & set(sample)  # never ranked
    sources: list[str] = []
    for _ in range(8):
        batch = client.get("/v1/projects/d/next?schema=digit&annotator=a&size=20").json
        sources += [it["source"] for it in batch["items"]]
        for it in batch["items"]:
            assert (it["source"] == "evaluation") == (it["id"] in sample)
            if it["source"] == "evaluation":
                assert it["prediction"] is None  # nothing to lead the annotator
        label(client, batch, y)
        run_jobs()
    # a quarter of each batch until the sample of 30 is labelled, then none
    assert sources.count("evaluation") == 30 and "evaluation" not in sources[-20:]
    assert store.eval_sample("d", "digit") == sample  # drawn once, not again
    models = client.get("/v1/projects/d/models?schema=digit").json["models"]
    last = models[-1]
    assert last["evaluation"]["size"] == 30
    assert last["training_size"] == 160 - 30  # the evaluation sample is not trained on
    lo, hi = last["evaluation"]["accuracy_interval"]
    assert lo <= last["evaluation"]["accuracy"] <= hi and hi - lo < 0.5
    metrics = client.get("/v1/projects/d/metrics?schema=digit").json
    assert [p["version"] for p in metrics["curve"]] == [m["version"] for m in models]
    point = metrics["curve"][-1]
    assert point["accuracy_interval"] == [lo, hi] and point["macro_f1_interval"][0] <= point["macro_f1"]
    # the gain is estimated again once the training labels have grown by a tenth
    estimated_at = None
    for m in models:
        due = estimated_at is None or m["training_size"] >= estimated_at * (1 + defaults.GAIN_GROWTH)
        assert ("gain" in m) == due, (m["version"], m["training_size"], estimated_at)
        if m.get("gain", {}).get("status") == "estimated":
            estimated_at = m["training_size"]
            assert m["gain"]["labels"] == m["training_size"] and m["gain_seconds"] > 0
    assert estimated_at is not None
    newest = [m for m in models if "gain" in m][-1]
    gain = metrics["gain"]
    assert gain["model_version"] == newest["version"] and gain["labels"] == newest["training_size"]
    assert gain["status"] == "estimated" and gain["evaluation_size"] == 30
    assert gain["random_labels"] == sum(1 for s in sources[: gain["labels"] + 30] if s == "random")
    assert gain["verdict"] in ("saving", "undecided", "not_helping")
    assert metrics["stopping"]["criterion"] and isinstance(metrics["should_stop"], bool)
    png = client.get("/v1/projects/d/metrics.png?schema=digit")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"


def test_the_cli_prints_the_intervals_and_the_gain():
    from alrank.cli import curve_table
    from service.examples_measures import METRICS

    table = curve_table(METRICS).splitlines()
    assert "accuracy [95%]" in table[0] and "random would need" in table[0]
    assert "0.830 [0.760, 0.880]" in table[1] and "905 [610, 1480]" in table[1]
    assert table[2] == "gain over random: " + METRICS["gain"]["statement"]
    assert table[3].startswith("keep labelling: predictions still changing")


def test_the_stop_set_is_the_smallest_hashes_in_pool_order():
    """The stop set is selected, not sorted whole: the same items, in the same order, as
    sorting the pool by each id's hash (ties in pool order, ids repeated included)."""
    import random
    import zlib

    from workers import defaults
    from workers.stopping import stop_rows, stop_set

    rng = random.Random(4)
    for n in (0, 3, defaults.STOP_SET_SIZE, defaults.STOP_SET_SIZE + 1, 30_000):
        ids = [f"x{rng.randrange(n // 3 + 1)}" for _ in range(n)]  # repeats: equal hashes
        expected = sorted(ids, key=lambda i: zlib.crc32(f"s\x00{i}".encode()))[: defaults.STOP_SET_SIZE]
        assert stop_set(ids, "s") == expected
        assert [ids[r] for r in stop_rows(ids, "s")] == expected
