"""Hybrid strategies: blends of the others.

Two forms:

- weights (Potato's ``hybrid_weights``, e.g. ``{"uncertainty": 0.7, "diversity": 0.3}``):
  each item's score is the weighted sum of its min-max normalised scores. The diversity
  term is the distance to the nearest labelled or already-picked item, updated after every
  pick, so the batch spreads out (ranked batch mode, Cardoso et al. 2017).
- shares (e.g. ``{"badge": 0.7, "diversity": 0.2, "random": 0.1}``): each strategy fills its
  share of the batch in turn, seeing the earlier picks as taken (and, for diversity and
  BADGE, as centres).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._geometry import FeatureSpace, LazyNearest
from workers.strategies._validation import (
    RandomState,
    Selection,
    check_batch_size,
    check_features,
    rng_from,
    top_k,
)
from workers.strategies.bald import bald_scores
from workers.strategies.uncertainty import uncertainty_scores

WEIGHTED: tuple[str, ...] = ("uncertainty", "diversity", "bald", "random")
"""Strategies that can take a weight in a blend."""

SHARED: tuple[str, ...] = ("uncertainty", "diversity", "badge", "bald", "random")
"""Strategies that can take a share of the batch."""


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min(initial=0.0)), float(scores.max(initial=0.0))
    if not hi > lo:
        return np.zeros_like(scores, dtype=np.float64)
    return (scores - lo) / (hi - lo)


def allocate(shares: dict[str, float], batch_size: int) -> dict[str, int]:
    """Items per strategy: proportional to its share, remainders to the largest fractions."""
    total = sum(shares.values())
    if total <= 0:
        raise InvalidInput("hybrid shares must add up to more than 0")
    exact = {s: batch_size * w / total for s, w in shares.items()}
    counts = {s: int(np.floor(v)) for s, v in exact.items()}
    left = batch_size - sum(counts.values())
    for s in sorted(exact, key=lambda s: counts[s] - exact[s])[:left]:
        counts[s] += 1
    return counts


def hybrid_weighted(
    weights: dict[str, float],
    batch_size: int,
    *,
    probabilities: np.ndarray | None = None,
    member_probabilities: np.ndarray | None = None,
    features=None,
    labelled_features=None,
    random_state: RandomState = None,
    measure: str = "margin",
    multi_label: bool = False,
    metric: str = "euclidean",
) -> Selection:
    """Greedy picks by the weighted blend; each score is the blend's value at its pick."""
    check_batch_size(batch_size)
    unknown = set(weights) - set(WEIGHTED)
    if unknown:
        raise InvalidInput(f"hybrid_weights names {sorted(unknown)}; weights apply to {list(WEIGHTED)}")
    if not any(w > 0 for w in weights.values()):
        raise InvalidInput("hybrid_weights needs at least one weight above 0")
    n = _pool_size(probabilities, features, member_probabilities)
    rng = rng_from(random_state)
    static = np.zeros(n)
    if weights.get("uncertainty", 0) > 0:
        if probabilities is None:
            raise InvalidInput("the uncertainty term needs the model's probabilities")
        static += weights["uncertainty"] * minmax(uncertainty_scores(probabilities, measure, multi_label))
    if weights.get("bald", 0) > 0:
        if member_probabilities is None:
            raise InvalidInput("the bald term needs the ensemble's probabilities")
        static += weights["bald"] * minmax(bald_scores(member_probabilities))
    if weights.get("random", 0) > 0:
        static += weights["random"] * rng.random(n)
    k = min(batch_size, n)
    picks = np.empty(k, dtype=np.int64)
    scores = np.empty(k)
    w_div = weights.get("diversity", 0.0)
    if w_div <= 0:
        idx = top_k(static, k)
        return Selection(idx, static[idx])
    if features is None:
        raise InvalidInput("the diversity term needs features")
    space = FeatureSpace(check_features(features), metric)
    external = None
    if labelled_features is not None and labelled_features.shape[0] > 0:
        external = space.external(labelled_features)
    start = 0
    initial = None
    if external is None:
        # nothing to be far from yet: the first pick is by the other terms alone
        first = int(np.argmax(static))
        picks[0], scores[0] = first, static[first] + w_div
        start = 1
        initial = np.array([first])
    scale = 1.0

    def blend(bound: np.ndarray, rows) -> np.ndarray:
        return static[rows] + w_div * np.sqrt(np.maximum(bound, 0.0)) / scale

    lazy = LazyNearest(space, external, initial, objective=blend)
    finite = lazy.bound[np.isfinite(lazy.bound)]
    if finite.size and finite.max() > 0:
        # the diversity term is scaled by the largest distance at the start
        scale = float(np.sqrt(finite.max()))
        lazy.recompute_values()
    for t in range(start, k):
        i, _, value = lazy.pick()
        picks[t], scores[t] = i, value
        lazy.add(i)
    return Selection(picks, scores)


def hybrid_shares(
    shares: dict[str, float],
    batch_size: int,
    run: Callable[[str, int, np.ndarray], Selection],
    n_items: int,
) -> Selection:
    """Fill the batch share by share; ``run(strategy, count, taken)`` picks ``count`` items
    avoiding (and, where it applies, spreading from) the pool rows in ``taken``."""
    check_batch_size(batch_size)
    unknown = set(shares) - set(SHARED)
    if unknown:
        raise InvalidInput(f"hybrid shares name {sorted(unknown)}; shares apply to {list(SHARED)}")
    k = min(batch_size, n_items)
    picks: list[int] = []
    scores: list[float] = []
    for strategy, count in allocate(shares, k).items():
        if count == 0:
            continue
        sel = run(strategy, count, np.array(picks, dtype=np.int64))
        picks += sel.indices.tolist()
        scores += sel.scores.tolist()
    return Selection(np.array(picks, dtype=np.int64), np.array(scores, dtype=np.float64))


def _pool_size(probabilities, features, member_probabilities) -> int:
    if probabilities is not None:
        return int(np.asarray(probabilities).shape[0])
    if features is not None:
        return int(features.shape[0])
    if member_probabilities is not None:
        return int(np.asarray(member_probabilities).shape[1])
    raise InvalidInput("a hybrid strategy needs probabilities or features")
