"""Query strategies against their definitions, with slow references written from the papers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from workers.exceptions import InvalidInput
from workers.strategies import REGISTRY, STRATEGIES, needs_ensemble, select
from workers.strategies._geometry import FeatureSpace, LazyNearest, NearestCentre
from workers.strategies.bald import bald_scores
from workers.strategies.diverse import diverse_uncertainty
from workers.strategies.hybrid import allocate
from workers.strategies.uncertainty import entropy, least_confidence, margin, uncertainty_scores

# --- uncertainty: hand-computed -------------------------------------------------------

P = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.34, 0.33, 0.33]])


def test_least_confidence_by_hand():
    assert np.allclose(least_confidence(P), [0.5, 0.1, 0.66])


def test_margin_by_hand():
    assert np.allclose(margin(P), [0.8, 0.15, 0.99])


def test_entropy_by_hand():
    h0 = -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2))
    h2 = -(0.34 * np.log(0.34) + 2 * 0.33 * np.log(0.33))
    assert np.allclose(entropy(P)[[0, 2]], [h0, h2])
    assert entropy(np.array([[1.0, 0.0]]))[0] == 0.0


def test_multi_label_uncertainty_by_hand():
    p = np.array([[0.5, 0.9], [0.1, 0.2]])
    assert np.allclose(uncertainty_scores(p, "margin", multi_label=True), [1.0, 0.4])
    h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
    assert np.allclose(
        uncertainty_scores(p, "entropy", multi_label=True), [(h(0.5) + h(0.9)) / 2, (h(0.1) + h(0.2)) / 2]
    )


@pytest.mark.parametrize(
    "measure, expected", [("least_confidence", [2, 0, 1]), ("margin", [2, 0, 1]), ("entropy", [2, 0, 1])]
)
def test_uncertainty_picks_least_certain_first(measure, expected):
    sel = select("uncertainty", batch_size=3, probabilities=P, params={"measure": measure})
    assert sel.indices.tolist() == expected


# --- k-center greedy: against a reference that materialises every distance --------------


def reference_kcenter(x: np.ndarray, k: int, labelled: np.ndarray | None, metric: str) -> tuple:
    if metric == "cosine":
        norm = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)  # noqa: E731
        x = norm(x)
        labelled = norm(labelled) if labelled is not None else None
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    picks, scores = [], []
    if labelled is not None and len(labelled):
        near = np.sqrt(((x[:, None, :] - labelled[None, :, :]) ** 2).sum(-1)).min(axis=1)
    else:
        to_mean = np.sqrt(((x - x.mean(axis=0)) ** 2).sum(-1))
        first = int(np.argmin(to_mean))
        picks.append(first)
        scores.append(to_mean[first])
        near = d[first].copy()
    while len(picks) < k:
        masked = near.copy()
        masked[picks] = -1
        i = int(np.argmax(masked))
        picks.append(i)
        scores.append(near[i])
        near = np.minimum(near, d[i])
    scores = np.array(scores)
    return picks, (scores**2 / 2 if metric == "cosine" else scores)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("n_labelled", [0, 5])
def test_kcenter_equals_reference(seed, sparse, metric, n_labelled):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 6)) * (rng.random((120, 6)) < 0.7)
    lab = rng.normal(size=(n_labelled, 6)) if n_labelled else None
    want_idx, want_scores = reference_kcenter(x, 15, lab, metric)
    feats = sp.csr_matrix(x) if sparse else x
    lab_in = (sp.csr_matrix(lab) if sparse else lab) if lab is not None else None
    sel = select(
        "diversity", batch_size=15, features=feats, labelled_features=lab_in, params={"metric": metric}
    )
    assert sel.indices.tolist() == want_idx
    assert np.allclose(sel.scores, want_scores, atol=1e-9)


def clustered(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10, size=(40, 16))
    return centres[rng.integers(0, 40, 20_000)] + rng.normal(size=(20_000, 16))


def test_nearest_centre_pruning_measures_few_points_on_clustered_data():
    x = clustered()
    tracker = NearestCentre(FeatureSpace(x))
    tracker.add_many(select("diversity", batch_size=60, features=x).indices)
    assert tracker.measured < 0.5 * 60 * len(x)  # a rescan per centre would measure them all


def test_lazy_kcenter_measures_few_points_in_high_dimension():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 64))[rng.integers(0, 10, 20_000)] + rng.normal(size=(20_000, 64))
    space = FeatureSpace(x)
    lazy = LazyNearest(space, None, np.array([0]))
    for _ in range(60):
        i, _, _ = lazy.pick()
        lazy.add(i)
    assert lazy.measured < 0.35 * 60 * len(x)  # where pruning by geometry gets nowhere


# --- BADGE: against a reference that builds the gradient embeddings -----------------------


def reference_badge(p: np.ndarray, x: np.ndarray, k: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    a = p.copy()
    a[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
    g = np.einsum("ic,id->icd", a, x).reshape(len(p), -1)  # the embedding, materialised
    d2 = ((g[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    norms = (g**2).sum(1)
    first = int(np.argmax(norms))
    picks, scores = [first], [norms[first]]
    near = d2[first].copy()
    while len(picks) < k:
        w = near.copy()
        w[picks] = 0.0
        cdf = np.cumsum(w)
        i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        picks.append(i)
        scores.append(near[i])
        near = np.minimum(near, d2[i])
    return picks, np.array(scores)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("sparse", [False, True])
def test_badge_equals_reference(seed, sparse):
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=(90, 5)) * (rng.random((90, 5)) < 0.8)
    p = rng.dirichlet(np.ones(4) * 0.7, size=90)
    want_idx, want_scores = reference_badge(p, x, 20, seed)
    sel = select(
        "badge", batch_size=20, probabilities=p, features=sp.csr_matrix(x) if sparse else x, random_state=seed
    )
    assert sel.indices.tolist() == want_idx
    assert np.allclose(sel.scores, want_scores, atol=1e-9)


def test_badge_never_repeats_even_with_duplicates():
    x = np.repeat(np.eye(3), 4, axis=0)  # 12 rows, 3 distinct
    p = np.tile([[0.6, 0.4]], (12, 1))
    sel = select("badge", batch_size=12, probabilities=p, features=x, random_state=0)
    assert sorted(sel.indices.tolist()) == list(range(12))


# --- BALD --------------------------------------------------------------------------------


def test_bald_zero_when_members_agree_and_largest_on_confident_disagreement():
    members = np.array(
        [
            # item 0: all agree, confident   item 1: all agree, unsure   item 2: confident, disagree
            [[0.99, 0.01], [0.5, 0.5], [1.0, 0.0], [0.7, 0.3]],
            [[0.99, 0.01], [0.5, 0.5], [0.0, 1.0], [0.3, 0.7]],
        ]
    )
    mi = bald_scores(members)
    assert np.allclose(mi[:2], 0.0)
    assert np.isclose(mi[2], np.log(2))
    assert mi[2] > mi[3] > 0
    assert select("bald", batch_size=2, member_probabilities=members).indices.tolist() == [2, 3]


# --- batch awareness on near-duplicate clusters ------------------------------------------


def planted_clusters(seed: int = 0):
    """10 tight clusters of 30 near-duplicates; cluster 0 is the most uncertain."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(10, 8))
    label = np.repeat(np.arange(10), 30)
    x = centres[label] + rng.normal(scale=0.01, size=(300, 8))
    top = np.where(label == 0, 0.52, 0.6 + 0.3 * label / 10) + rng.normal(scale=0.001, size=300)
    p = np.stack([top, 1 - top], axis=1)
    return x, p, label


@pytest.mark.parametrize(
    "strategy, params",
    [
        ("diversity", {}),
        ("badge", {}),
        ("hybrid", {"hybrid_weights": {"uncertainty": 0.5, "diversity": 0.5}}),
        ("hybrid", {"hybrid_shares": {"badge": 0.7, "diversity": 0.2, "random": 0.1}}),
    ],
)
def test_batch_aware_strategies_spread_across_clusters(strategy, params):
    x, p, label = planted_clusters()
    top = select("uncertainty", batch_size=10, probabilities=p)
    assert len(set(label[top.indices])) == 1  # top-k uncertainty wastes the batch on one cluster
    sel = select(strategy, batch_size=10, probabilities=p, features=x, random_state=0, params=params)
    assert len(set(label[sel.indices])) >= 7


def test_diverse_uncertainty_takes_one_item_from_each_uncertain_region():
    x, p, label = planted_clusters()
    scores = margin(p)
    # the 120 most uncertain items fill clusters 0 to 3; one item from each, most uncertain first
    sel = diverse_uncertainty(scores, x, batch_size=4, random_state=0, prefilter=30)
    assert sorted(label[sel.indices]) == [0, 1, 2, 3]
    assert np.all(np.diff(sel.scores) <= 0)
    assert label[select("uncertainty", batch_size=4, probabilities=p).indices].tolist() == [0, 0, 0, 0]
    # a longer ranking comes in blocks, each spread the same way over what is left
    two = diverse_uncertainty(scores, x, batch_size=8, random_state=0, block=4, prefilter=30)
    assert sorted(label[two.indices[:4]]) == sorted(label[two.indices[4:]]) == [0, 1, 2, 3]
    assert len(set(two.indices.tolist())) == 8
    # rows taken by another share of a blend are never picked
    rest = diverse_uncertainty(scores, x, batch_size=4, random_state=0, prefilter=30, exclude=sel.indices)
    assert not set(rest.indices.tolist()) & set(sel.indices.tolist())


def test_select_passes_the_diverse_uncertainty_prefilter_through():
    x, p, label = planted_clusters()
    # a prefilter of 1 clusters only the batch's own k most uncertain items: top-k uncertainty
    narrow = select("diverse_uncertainty", batch_size=4, probabilities=p, features=x, params={"prefilter": 1})
    top = select("uncertainty", batch_size=4, probabilities=p)
    assert sorted(narrow.indices.tolist()) == sorted(top.indices.tolist())
    wide = select("diverse_uncertainty", batch_size=4, probabilities=p, features=x, params={"prefilter": 30})
    assert sorted(label[wide.indices]) == [0, 1, 2, 3]


# --- one contract for every strategy -----------------------------------------------------


def inputs(n: int, classes: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "probabilities": rng.dirichlet(np.ones(classes), size=n) if n else np.zeros((0, classes)),
        "member_probabilities": rng.dirichlet(np.ones(classes), size=(4, n))
        if n
        else np.zeros((4, 0, classes)),
        "features": rng.normal(size=(n, 4)),
        "labelled_features": rng.normal(size=(3, 4)),
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
class TestContract:
    def test_empty_pool(self, strategy):
        sel = select(strategy, batch_size=5, random_state=0, **inputs(0))
        assert len(sel.indices) == 0

    def test_batch_larger_than_pool(self, strategy):
        sel = select(strategy, batch_size=50, random_state=0, **inputs(12))
        assert sorted(sel.indices.tolist()) == list(range(12))

    def test_one_class(self, strategy):
        data = inputs(20)
        data["probabilities"] = np.ones((20, 1))
        data["member_probabilities"] = np.ones((4, 20, 1))
        sel = select(strategy, batch_size=5, random_state=0, **data)
        assert len(set(sel.indices.tolist())) == 5

    def test_deterministic_under_random_state(self, strategy):
        a = select(strategy, batch_size=8, random_state=7, **inputs(60))
        b = select(strategy, batch_size=8, random_state=7, **inputs(60))
        assert a.indices.tolist() == b.indices.tolist()
        assert np.array_equal(a.scores, b.scores)

    def test_no_duplicates_and_in_range(self, strategy):
        sel = select(strategy, batch_size=30, random_state=1, **inputs(60))
        assert len(set(sel.indices.tolist())) == 30
        assert sel.indices.min() >= 0 and sel.indices.max() < 60


def test_unknown_strategy():
    with pytest.raises(InvalidInput):
        select("magic", batch_size=1, **inputs(3))


def test_share_allocation():
    assert allocate({"badge": 0.7, "diversity": 0.2, "random": 0.1}, 10) == {
        "badge": 7,
        "diversity": 2,
        "random": 1,
    }
    assert sum(allocate({"a": 1, "b": 1, "c": 1}, 10).values()) == 10


def test_the_registry_states_what_each_strategy_needs():
    """What each entry claims is what its pick does: one that says it needs no model picks
    from features alone; one that needs a model refuses to run without probabilities."""
    data = inputs(40)
    for name, strategy in REGISTRY.items():
        no_model = {"features": data["features"], "labelled_features": data.get("labelled_features")}
        if strategy.needs_model:
            with pytest.raises(InvalidInput):
                select(name, batch_size=5, random_state=0, **no_model)
        else:
            assert len(select(name, batch_size=5, random_state=0, **no_model).indices) == 5
    assert needs_ensemble("bald", {}) and not needs_ensemble("uncertainty", {})
    assert needs_ensemble("hybrid", {"hybrid_weights": {"bald": 0.5, "uncertainty": 0.5}})
    assert needs_ensemble("hybrid", {"hybrid_shares": {"bald": 0.5, "random": 0.5}})
    assert not needs_ensemble("hybrid", {"hybrid_weights": {"uncertainty": 0.7, "diversity": 0.3}})
