"""Balanced heads (workers.ranking.balance_classes): the labels keep the pool's class mix."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from workers.ranking import Ranking, balance_classes, balanced
from workers.simulation.engine import run_one
from workers.simulation.served import ServedPool, replay
from workers.simulation.spec import Settings


def _counts(items: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(predicted[items], minlength=k).astype(float)


@pytest.mark.parametrize("seed", range(20))
def test_every_prefix_of_the_head_keeps_the_shares(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = 400
    predicted = rng.integers(0, k, n)
    order = rng.permutation(n)
    shares = rng.dirichlet(np.ones(k))
    # classes with a big share need items enough to fill it: cap the head at what all have
    depth = int(min(100, np.bincount(predicted, minlength=k).min() / shares.max()))
    out = balance_classes(order, predicted, shares, np.zeros(k), depth)
    for j in range(1, depth + 1):
        gap = _counts(out[:j], predicted, k) - shares * j
        assert np.all(np.abs(gap) < 1 + 1e-9), (j, gap)


def test_within_a_class_and_after_the_head_the_strategys_order_is_kept():
    rng = np.random.default_rng(1)
    n, k = 300, 3
    predicted = rng.integers(0, k, n)
    order = rng.permutation(n)
    out = balance_classes(order, predicted, np.array([0.2, 0.3, 0.5]), np.zeros(k), 60)
    assert sorted(out.tolist()) == list(range(n))
    position = {item: p for p, item in enumerate(order)}
    for c in range(k):
        ranks = [position[i] for i in out[:60] if predicted[i] == c]
        assert ranks == sorted(ranks)
        # a class's head items are its first in the strategy's order
        assert ranks == sorted(position[i] for i in order if predicted[i] == c)[: len(ranks)]
    rest = [position[i] for i in out[60:]]
    assert rest == sorted(rest)


def test_classes_the_labels_lack_come_first():
    predicted = np.array([0] * 10 + [1] * 10)
    order = np.arange(20)  # the strategy ranks every class 0 item first
    out = balance_classes(order, predicted, np.array([0.5, 0.5]), np.array([8.0, 0.0]), 10)
    # 8 labels of class 0 and none of class 1: the first 8 of the head catch class 1 up
    assert predicted[out[:8]].tolist() == [1] * 8
    assert sorted(predicted[out[8:10]].tolist()) == [0, 1]


def test_a_class_without_candidates_left_gives_way():
    predicted = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    out = balance_classes(np.arange(8), predicted, np.array([0.5, 0.5]), np.zeros(2), 8)
    assert out.tolist() == [0, 2, 1, 3, 4, 5, 6, 7]


def test_ties_go_to_the_item_the_strategy_ranks_first():
    predicted = np.array([0, 0, 1, 1])
    out = balance_classes(np.array([3, 1, 2, 0]), predicted, np.array([0.5, 0.5]), np.zeros(2), 4)
    assert out.tolist() == [3, 1, 2, 0]


def _skewed_pool(seed: int) -> tuple[ServedPool, np.ndarray, list[str]]:
    """Three classes of equal size: two that overlap (where uncertainty looks) and one far
    from both, which a model gets right from its first labels."""
    rng = np.random.default_rng(seed)
    centres = {"near-a": (0.0, 0.0), "near-b": (1.0, 0.0), "far": (12.0, 12.0)}
    rows, truth = [], []
    for name, centre in centres.items():
        rows.append(rng.normal(centre, 1.0, size=(300, 2)))
        truth += [name] * 300
    x = np.vstack(rows)
    ids = [f"i{j:04d}" for j in range(len(truth))]
    pool = ServedPool(ids, [""] * len(ids), x, dict(zip(ids, truth, strict=True)))
    return pool, x[:30], truth[:30]


@pytest.mark.parametrize("balance", [True, False])
def test_the_served_labels_keep_the_pools_mix_only_when_balanced(balance):
    pool, test_x, test_y = _skewed_pool(0)
    al = {
        "query_strategy": "uncertainty",
        "random_sample_percent": 0.0,
        "eval_fraction": 0.0,
        "min_instances_for_training": 10,
        "update_frequency": 10,
        "balance_classes": balance,
        "classifier_name": "logistic_regression",  # the mix is under test, not the model
    }
    points = replay(pool, [""] * len(test_y), test_x.tolist(), test_y, al, 10, 150)
    labelled = points[-1].labelled_ids
    mix = collections.Counter(pool.truth[i] for i in labelled)
    if balance:
        # a third each, within what the model's mistakes on the overlap cost
        assert all(35 <= mix[c] <= 65 for c in ("near-a", "near-b", "far")), mix
    else:
        # uncertainty alone spends its labels on the overlap and leaves the far class out
        assert mix["far"] < 20, mix


@pytest.mark.parametrize("balance", [True, False])
def test_the_seeded_replay_ranks_as_the_service_does(balance, monkeypatch):
    """The seeded loop (``bench/label_efficiency.py``) takes each batch from the service's
    ranking head: balanced, unless the settings say not."""
    import workers.simulation.engine as engine

    pool, test_x, test_y = _skewed_pool(1)
    ids = sorted(pool.truth)
    trained_on: list[list[str]] = []
    real = engine.evaluate

    def spy(x, y, *args):
        trained_on.append(list(y))
        return real(x, y, *args)

    monkeypatch.setattr(engine, "evaluate", spy)
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=10,
        batch_size=10,
        budget=150,
        loop="seeded",
        classifier="logistic_regression",  # the ranking head is under test, not the model
        params={"balance_classes": balance},
    )
    points = run_one("uncertainty", 0, pool.vectors, [pool.truth[i] for i in ids], test_x, test_y, settings)
    assert points[-1].labels == len(trained_on[-1]) == 150
    mix = collections.Counter(trained_on[-1])
    if balance:
        assert all(35 <= mix[c] <= 65 for c in ("near-a", "near-b", "far")), mix
    else:
        assert mix["far"] < 20, mix


def test_two_classes_keep_the_strategys_order():
    """With two classes both sit on the one boundary uncertainty samples: nothing to balance."""
    ranking = Ranking(np.arange(6), np.zeros(6), "uncertainty")
    proba = np.array([[0.9, 0.1]] * 5 + [[0.2, 0.8]])
    assert balanced(ranking, ["a", "b"], ["a"] * 10, proba, 6).order.tolist() == list(range(6))
    # the same skew over three classes is dealt out class by class
    three = np.array([[0.8, 0.1, 0.1]] * 4 + [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    assert balanced(ranking, ["a", "b", "c"], ["a"] * 10, three, 6).order.tolist()[:2] == [4, 5]
