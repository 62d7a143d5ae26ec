"""BADGE: Batch Active learning by Diverse Gradient Embeddings (Ash et al. 2020,
arXiv:1906.03671).

The gradient embedding of item i under the model's own prediction is
g_i = (p_i - onehot(argmax p_i)) (x) x_i: long for uncertain items, pointing in
different directions for different items. The batch is k-means++ seeding over these
embeddings: the first pick has the largest norm (as in the authors' code), each later one
is drawn with probability proportional to its squared distance to the nearest pick, so
no item can be drawn twice and there is no centre at the origin. Embeddings are never
built: <g_i, g_j> = <a_i, a_j> <x_i, x_j>.
"""

from __future__ import annotations

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._geometry import GradientSpace, NearestCentre
from workers.strategies._validation import (
    RandomState,
    Selection,
    check_batch_size,
    check_features,
    check_probabilities,
    empty_selection,
    rng_from,
)


def badge(
    probabilities: np.ndarray,
    features,
    batch_size: int,
    random_state: RandomState = None,
    initial_centres: np.ndarray | None = None,
) -> Selection:
    """Indices in pick order; each score is the squared distance that weighted its draw
    (the first pick's is its squared gradient norm). ``initial_centres`` are pool rows
    already chosen by another strategy of a blend: centres from the start, so every pick
    is then drawn."""
    check_batch_size(batch_size)
    p = check_probabilities(probabilities)
    x = check_features(features)
    if p.shape[0] != x.shape[0]:
        raise InvalidInput("probabilities and features must have one row per pool item")
    n = x.shape[0]
    k = min(batch_size, n)
    if k == 0:
        return empty_selection()
    rng = rng_from(random_state)
    space = GradientSpace(p, x)
    tracker = NearestCentre(space)
    picked = np.zeros(n, dtype=bool)
    start = 0
    if initial_centres is not None and len(initial_centres):
        tracker.add_many(initial_centres)
        picked[initial_centres] = True
        k = min(k, n - int(picked.sum()))
    picks = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    if k and not picked.any():
        first = int(np.argmax(space.sq_norms))
        picks[0], scores[0] = first, space.sq_norms[first]
        tracker.add(first)
        picked[first] = True
        start = 1
    for t in range(start, k):
        i = draw_proportional(tracker.min_sq, picked, rng)
        picks[t], scores[t] = i, tracker.min_sq[i]
        tracker.add(i)
        picked[i] = True
    return Selection(picks, scores)


def draw_proportional(weights: np.ndarray, picked: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probability proportional to ``weights`` (inverse CDF on one
    uniform draw); uniform over the unpicked items when every weight is zero."""
    w = weights  # zero at every pick already (distance to itself)
    cdf = np.cumsum(w)
    if not cdf[-1] > 0:
        free = np.flatnonzero(~picked)
        return int(free[int(rng.random() * len(free))])
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    i = min(i, len(w) - 1)
    while w[i] == 0:  # only reachable through rounding at the very top of the CDF
        i -= 1
    return i
