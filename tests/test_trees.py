"""Tree models, the forest's committee and ``auto``'s choice of model kind."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

from workers.exceptions import InvalidInput
from workers.model_choice import choose
from workers.models import LinearModel, _calibration_logits, _fit, load_model, train_single_label
from workers.strategies.bald import bald_scores
from workers.trees import TREE_KINDS, TreeModel


def xor_pool(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Two coordinates whose class is the sign of their product: no hyperplane splits them."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    return x, ["same" if a * b > 0 else "diff" for a, b in x]


def linear_pool(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Ten noisy coordinates whose class is the side of one oblique hyperplane: what a linear
    model learns exactly and axis-aligned trees only approximate with staircases."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    w = rng.normal(size=10)
    return x, ["up" if v > 0 else "down" for v in x @ w]


@pytest.mark.parametrize("kind", TREE_KINDS)
def test_a_tree_model_is_stored_and_loaded_with_the_same_probabilities(kind):
    x, y = xor_pool(600)
    params = {"max_depth": 6} if kind != "hist_gradient_boosting" else None
    model = train_single_label(x[:300], y[:300], 0, kind, params)
    assert isinstance(model, TreeModel) and model.kind == kind
    loaded = load_model(model.to_bytes())
    assert isinstance(loaded, TreeModel) and loaded.classes == model.classes
    assert loaded.temperature == model.temperature != 1.0
    np.testing.assert_allclose(loaded.predict_proba(x[300:]), model.predict_proba(x[300:]))
    right = np.array(model.classes)[model.predict_proba(x[300:]).argmax(axis=1)] == np.array(y[300:])
    assert right.mean() > 0.9
    # the ranking's one pass gives what the two calls give
    proba, space = model.proba_and_space(x[300:])
    np.testing.assert_allclose(proba, model.predict_proba(x[300:]))
    np.testing.assert_allclose(space, model.space(x[300:]))
    if kind != "hist_gradient_boosting":  # forests also take sparse rows (TF-IDF)
        rows = sp.csr_matrix(np.where(x[300:] > 0, x[300:], 0))
        proba, _ = model.proba_and_space(rows)
        np.testing.assert_allclose(proba, model.predict_proba(rows.toarray()))


def test_a_stored_tree_model_with_a_type_outside_the_allowlist_is_refused():
    """skops rebuilds only the allowed types: a state naming a function from outside the
    allowlist (here a harmless one) is refused, not run."""
    import os

    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = xor_pool(200)
    model = train_single_label(x, y, 0, "random_forest", {"n_estimators": 5}, calibrate=False)
    assert isinstance(model, TreeModel)
    model.estimator = Pipeline([("f", FunctionTransformer(os.getcwd)), ("m", model.estimator)])
    buf = io.BytesIO()
    np.savez(
        buf,
        classes=np.array(model.classes),
        kind=np.array(model.kind),
        temperature=np.array(1.0),
        estimator=np.frombuffer(sio.dumps(model.estimator), dtype=np.uint8),
    )
    with pytest.raises(InvalidInput, match="does not load"):
        load_model(buf.getvalue())


def test_a_forest_committee_averages_to_the_forest_and_disagrees_where_its_trees_do():
    x, y = xor_pool(400, seed=1)
    model = train_single_label(x, y, 0, "random_forest", {"n_estimators": 40}, calibrate=False)
    assert isinstance(model, TreeModel)
    probe = np.random.default_rng(2).uniform(-1, 1, (500, 2))
    members = model.committee_proba(probe, 5)
    assert members.shape == (5, 500, 2)
    np.testing.assert_allclose(members.mean(axis=0), model.estimator.predict_proba(probe), atol=1e-12)
    # each tree's vote; the committee's BALD is high where the votes split, near zero where
    # every tree agrees
    votes = np.stack([t.predict(probe) for t in model.estimator.estimators_]).mean(axis=0)
    split = np.minimum(votes, 1 - votes)
    scores = bald_scores(members)
    assert scores[split == 0].max() < 1e-9
    from scipy.stats import spearmanr

    assert spearmanr(scores, split).statistic > 0.5


def test_gradient_boosting_has_no_committee():
    x, y = xor_pool(200)
    model = train_single_label(x, y, 0, "hist_gradient_boosting", {"max_iter": 20}, calibrate=False)
    assert not model.has_committee
    with pytest.raises(InvalidInput, match="committee"):
        model.committee_proba(x, 5)


def test_auto_picks_trees_on_xor_and_the_linear_model_on_a_hyperplane():
    x, y = xor_pool(600)
    yi = np.array([v == "same" for v in y], dtype=int)
    kind, report, _ = choose(x, yi, 0, _fit, _calibration_logits)
    assert kind in ("extra_trees", "random_forest", "hist_gradient_boosting")
    assert report["cv_accuracy"][kind] > report["cv_accuracy"]["logistic_regression"] + 0.2
    assert report["labels"] == 600 and report["lead"] >= 0
    x, y = linear_pool(600)
    yi = np.array([v == "up" for v in y], dtype=int)
    kind, report, _ = choose(x, yi, 0, _fit, _calibration_logits)
    assert kind == "logistic_regression", report
    assert report["cv_accuracy"]["logistic_regression"] == max(report["cv_accuracy"].values())


def test_auto_trains_the_linear_model_on_sparse_text_features_without_comparing():
    """On text features ``auto`` is logistic regression, weight for weight: text projects
    lose nothing to the default."""
    import scipy.sparse as sp

    x = sp.random(200, 500, density=0.02, random_state=0, format="csr")
    y = ["a", "b"] * 100
    model = train_single_label(x, y, 0, "auto")
    linear = train_single_label(x, y, 0, "logistic_regression")
    assert isinstance(model, LinearModel) and isinstance(linear, LinearModel)
    np.testing.assert_array_equal(model.coef, linear.coef)
    assert model.temperature == linear.temperature
    assert model.metrics["model_choice"] == {
        "chosen": "logistic_regression",
        "reason": "sparse text features",
        "labels": 0,
    }


def test_auto_does_not_choose_a_kind_whose_retrains_would_be_too_slow():
    """On XOR every tree kind beats logistic regression by far; with each tree kind's retrain
    estimated past ``AUTO_RETRAIN_SECONDS`` the linear model is kept, and the record says
    which kinds were too slow. An incumbent grown too slow loses its place to the fallback."""
    from workers import defaults

    x, y = xor_pool(300)
    yi = np.array([v == "same" for v in y], dtype=int)
    timed = []

    def cost(kind, est, fold_seconds):
        timed.append(kind)
        assert fold_seconds > 0 and est is not None
        return 1.0 if kind in ("logistic_regression", "extra_trees") else defaults.AUTO_RETRAIN_SECONDS + 1

    kind, report, _ = choose(x, yi, 0, _fit, _calibration_logits, cost=cost)
    assert kind == "extra_trees" and report["too_slow"] == ["random_forest", "hist_gradient_boosting"]
    assert set(report["retrain_seconds"]) == set(timed) == set(report["cv_accuracy"])

    def slow(kind, est, fold_seconds):
        return 0.5 if kind == "logistic_regression" else defaults.AUTO_RETRAIN_SECONDS + 1

    kind, report, _ = choose(x, yi, 0, _fit, _calibration_logits, incumbent="random_forest", cost=slow)
    assert kind == "logistic_regression"
    assert report["cv_accuracy"]["random_forest"] > report["cv_accuracy"]["logistic_regression"] + 0.2


def test_auto_compares_after_the_ranking_is_out_and_the_next_retrain_trains_the_choice(
    client, redis_conn, run_jobs, monkeypatch
):
    """Through the service: the first version under ``auto`` on an XOR pool of vectors is
    logistic regression, with nothing compared; the comparison runs once its ranking is
    published and is kept for the schema; the next version trains the kind it chose and
    the model history says what the choice rests on. No comparison runs again until the
    training labels have grown by ``AUTO_GROWTH``."""
    from workers import defaults
    from workers.store import Store

    # the time budget has tests of its own: a busy machine must not leave a kind out here
    monkeypatch.setattr(defaults, "AUTO_RETRAIN_SECONDS", 1e9)

    x, y = xor_pool(400, seed=3)
    body = {
        "name": "auto",
        "schemas": [{"name": "s", "labels": ["same", "diff"]}],
        "active_learning": {"min_instances_for_training": 40, "update_frequency": 40, "eval_fraction": 0.0},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"p{k}", "vector": [float(a), float(b)]} for k, (a, b) in enumerate(x)]
    assert client.post("/v1/projects/auto/items", json={"items": items}).status_code == 200
    run_jobs()
    store = Store(redis_conn)

    def label_a_batch():
        batch = client.get("/v1/projects/auto/next?schema=s&annotator=a&size=40").json["items"]
        labels = [
            {"item": it["id"], "schema": "s", "annotator": "a", "value": y[int(it["id"][1:])]} for it in batch
        ]
        assert client.post("/v1/projects/auto/labels", json={"labels": labels}).status_code == 200
        run_jobs()

    label_a_batch()
    first = client.get("/v1/projects/auto/models?schema=s").json["models"][-1]
    assert first["classifier"] == "logistic_regression"
    assert first["metrics"]["model_choice"]["reason"] == "no comparison yet"
    choice = store.model_choice("auto", "s")
    assert choice["labels"] == first["training_size"] and choice["chosen"] != "logistic_regression"
    assert set(choice["retrain_seconds"]) == set(choice["cv_accuracy"]) and choice["too_slow"] == []

    label_a_batch()
    second = client.get("/v1/projects/auto/models?schema=s").json["models"][-1]
    assert second["classifier"] == choice["chosen"]
    assert second["metrics"]["model_choice"] == choice
    # calibrated by the comparison's out-of-fold logits, with no folds of its own
    assert second["temperature"] == choice["temperature"]
    assert second["metrics"]["cv_accuracy"] == choice["cv_accuracy"][choice["chosen"]]
    # 80 labels are 2x the 40 compared on: a new comparison, the tree kind as its incumbent
    again = store.model_choice("auto", "s")
    assert again["labels"] == second["training_size"] and again["chosen"] != "logistic_regression"
    store.save_model_choice("auto", "s", {**choice, "chosen": "logistic_regression"})
    assert store.model_choice("auto", "s") == again  # a comparison on fewer labels does not replace it


def test_auto_scores_its_comparison_on_the_labels_drawn_at_random():
    """The folds train on every label, but once enough labels were drawn uniformly each kind
    is scored on its out-of-fold predictions of those alone; with too few, on all."""
    from workers import defaults

    x, y = xor_pool(300)
    yi = np.array([v == "same" for v in y], dtype=int)
    drawn = np.zeros(300, dtype=bool)
    drawn[::3] = True
    kind, report, z = choose(x, yi, 0, _fit, _calibration_logits, drawn=drawn)
    assert report["scored_on"] == 100
    assert report["cv_accuracy"][kind] == round(float((z.argmax(axis=1) == yi)[drawn].mean()), 4)
    assert report["cv_accuracy"][kind] != round(float((z.argmax(axis=1) == yi).mean()), 4)
    few = np.zeros(300, dtype=bool)
    few[: defaults.AUTO_MIN_DRAWN - 1] = True
    kind, report, z = choose(x, yi, 0, _fit, _calibration_logits, drawn=few)
    assert report["scored_on"] == 300
    assert report["cv_accuracy"][kind] == round(float((z.argmax(axis=1) == yi).mean()), 4)


def test_auto_compares_only_the_candidates_given():
    x, y = xor_pool(300)
    model = train_single_label(x, y, 0, "auto", {"candidates": ["logistic_regression", "extra_trees"]})
    assert set(model.metrics["model_choice"]["cv_accuracy"]) == {"logistic_regression", "extra_trees"}
    assert model.kind == "extra_trees"


def test_gradient_boosting_refuses_sparse_features_with_the_reason():
    import scipy.sparse as sp

    x = sp.random(60, 30, density=0.2, random_state=0, format="csr")
    with pytest.raises(InvalidInput, match="dense features"):
        train_single_label(x, ["a", "b"] * 30, 0, "hist_gradient_boosting")


@pytest.mark.parametrize(
    "al,words",
    [
        ({"classifier_name": "hist_gradient_boosting", "query_strategy": "bald"}, ["bald", "committee"]),
        (
            {
                "classifier_name": "hist_gradient_boosting",
                "query_strategy": "hybrid",
                "hybrid_shares": {"bald": 0.5, "random": 0.5},
            },
            ["bald", "committee"],
        ),
        ({"classifier_params": {"C": 2.0}}, ["auto", "classifier_name"]),
        ({"classifier_params": {"candidates": ["complement_nb"]}}, ["candidates"]),
        ({"classifier_name": "random_forest", "classifier_params": {"n_estimators": 5000}}, ["n_estimators"]),
        ({"classifier_name": "extra_trees", "classifier_params": {"oob_score": True}}, ["oob_score"]),
        ({"classifier_name": "gradient_boosting"}, ["classifier_name", "hist_gradient_boosting"]),
    ],
)
def test_a_model_a_strategy_cannot_serve_or_a_bad_parameter_is_refused_at_create(client, al, words):
    body = {"name": "refused", "schemas": [{"name": "s", "labels": ["a", "b"]}], "active_learning": al}
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 422, r.json
    assert all(w in r.json["detail"] for w in words), r.json["detail"]
    assert client.get("/v1/projects/refused").status_code == 404


def test_a_forests_space_measures_how_many_trees_put_two_items_in_one_leaf():
    """Diversity and BADGE measure distances in the forest's leaves: inner products in its
    space estimate the share of trees that put two items in one leaf (the forest's
    proximity), the same on every call; boosting's space is its log-probabilities."""
    x, y = xor_pool(400, seed=3)
    model = train_single_label(x, y, 0, "extra_trees", {"n_estimators": 100, "max_depth": 5}, calibrate=False)
    assert isinstance(model, TreeModel)
    probe = np.random.default_rng(4).uniform(-1, 1, (60, 2))
    space = model.space(probe)
    np.testing.assert_array_equal(space, model.space(probe))
    from workers.trees import SPACE_TREES

    leaves = model.estimator.apply(probe)[:, :SPACE_TREES]
    shared = (leaves[:, None, :] == leaves[None, :, :]).mean(axis=2)
    upper = np.triu_indices(len(probe), 1)
    estimate = (space @ space.T)[upper]
    assert np.corrcoef(estimate, shared[upper])[0, 1] > 0.8
    boosted = train_single_label(x, y, 0, "hist_gradient_boosting", {"max_iter": 20}, calibrate=False)
    assert boosted.space(probe).shape == (60, 2)
