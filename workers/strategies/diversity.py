"""Diversity sampling by k-center greedy (Sener & Savarese 2018, "core-set").

Each pick is the pool item farthest from its nearest centre, where the centres are the
labelled items and the items picked so far. With nothing labelled, the first pick is the
item nearest the pool's mean, so a cold-start batch begins at the pool's centre and then
spreads out. Picks are exact without rescanning the pool at every pick
(``_geometry.LazyNearest``).
"""

from __future__ import annotations

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._geometry import FeatureSpace, LazyNearest
from workers.strategies._validation import Selection, check_batch_size, check_features, empty_selection

METRICS = ("euclidean", "cosine")


def kcenter_greedy(
    features,
    batch_size: int,
    labelled_features=None,
    metric: str = "euclidean",
    initial_centres: np.ndarray | None = None,
) -> Selection:
    """Farthest-first traversal; each score is the pick's distance to its nearest centre.

    Euclidean distance, or cosine distance 1 - cos(a, b). Ties go to the lower index.
    ``initial_centres`` are pool rows already chosen (by another strategy of a blend):
    centres from the start, never picked again.
    """
    check_batch_size(batch_size)
    if metric not in METRICS:
        raise InvalidInput(f"unknown distance {metric!r}; use one of {METRICS}")
    x = check_features(features)
    n = x.shape[0]
    k = min(batch_size, n)
    if k == 0:
        return empty_selection()
    space = FeatureSpace(x, metric)
    external = None
    if labelled_features is not None and labelled_features.shape[0] > 0:
        lab = check_features(labelled_features, "labelled_features")
        if lab.shape[1] != x.shape[1]:
            raise InvalidInput("labelled_features and features differ in width")
        external = space.external(lab)
    taken = np.asarray(initial_centres if initial_centres is not None else [], dtype=np.int64)
    k = min(k, n - len(np.unique(taken)))
    picks = np.empty(k, dtype=np.int64)
    sq_scores = np.empty(k, dtype=np.float64)
    start = 0
    if k and external is None and not len(taken):
        to_mean = space.sq_dist_to_mean()
        first = int(np.argmin(to_mean))
        picks[0], sq_scores[0] = first, to_mean[first]
        taken = np.array([first])
        start = 1
    lazy = LazyNearest(space, external, taken)
    for t in range(start, k):
        i, sq, _ = lazy.pick()
        picks[t], sq_scores[t] = i, sq
        lazy.add(i)
    scores = sq_scores / 2.0 if metric == "cosine" else np.sqrt(sq_scores)
    return Selection(picks, scores)
