"""Diversity sampling by k-center greedy (Sener & Savarese 2018, "core-set").

Each pick is the pool item farthest from its nearest centre, where the centres are the
labelled items and the items picked so far. With nothing labelled, the first pick is the
item nearest the pool's mean, so a cold-start batch begins at the pool's centre and then
spreads out.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from workers.exceptions import InvalidInput
from workers.strategies._validation import (
    Selection,
    check_batch_size,
    check_features,
    empty_selection,
)

METRICS = ("euclidean", "cosine")
_CHUNK = 256


def _row_sq_norms(x) -> np.ndarray:
    if sp.issparse(x):
        return np.asarray(x.multiply(x).sum(axis=1)).ravel().astype(np.float64)
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def _dot_rows(x, rows) -> np.ndarray:
    """x @ rows.T as a dense (n, len(rows)) float64 array."""
    prod = x @ rows.T
    if sp.issparse(prod):
        prod = prod.toarray()
    return np.asarray(prod, dtype=np.float64)


def _prepare(x, metric: str):
    if metric not in METRICS:
        raise InvalidInput(f"unknown distance {metric!r}; use one of {METRICS}")
    if metric == "cosine":
        x = normalize(x, norm="l2", copy=True)
    return x


def squared_distances_to(x, x_sq: np.ndarray, centres, centres_sq: np.ndarray) -> np.ndarray:
    """Squared euclidean distance of every row of x to its nearest row of ``centres``."""
    best = np.full(x.shape[0], np.inf)
    for start in range(0, centres.shape[0], _CHUNK):
        c = centres[start : start + _CHUNK]
        d = x_sq[:, None] - 2.0 * _dot_rows(x, c) + centres_sq[start : start + _CHUNK][None, :]
        np.minimum(best, d.min(axis=1), out=best)
    return np.maximum(best, 0.0)


def kcenter_greedy(
    features,
    batch_size: int,
    labelled_features=None,
    metric: str = "euclidean",
) -> Selection:
    """Farthest-first traversal; scores are each pick's distance to its nearest centre.

    Cosine distance is 1 - cos, computed on L2-normalised rows (||a - b||^2 / 2).
    """
    check_batch_size(batch_size)
    x = check_features(features)
    n = x.shape[0]
    k = min(batch_size, n)
    if k == 0:
        return empty_selection()
    x = _prepare(x, metric)
    x_sq = _row_sq_norms(x)

    first = -1
    if labelled_features is not None and labelled_features.shape[0] > 0:
        lab = _prepare(check_features(labelled_features, "labelled_features"), metric)
        if lab.shape[1] != x.shape[1]:
            raise InvalidInput("labelled_features and features differ in width")
        min_sq = squared_distances_to(x, x_sq, lab, _row_sq_norms(lab))
    else:
        # No centre yet: start at the item nearest the mean (the most central item, not
        # an outlier); its score is its distance to that mean.
        mean = np.asarray(x.mean(axis=0), dtype=np.float64).reshape(1, -1)
        min_sq = squared_distances_to(x, x_sq, mean, _row_sq_norms(mean))
        first = int(np.argmin(min_sq))

    picks = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    for t in range(k):
        if t == 0 and first >= 0:
            i = first
            scores[t] = min_sq[i]
            min_sq = np.full(n, np.inf)
        else:
            i = int(np.argmax(min_sq))
            scores[t] = min_sq[i]
        picks[t] = i
        d = x_sq - 2.0 * _dot_rows(x, x[i : i + 1]).ravel() + x_sq[i]
        np.minimum(min_sq, np.maximum(d, 0.0), out=min_sq)
        min_sq[i] = -1.0  # never picked again
    dist = np.sqrt(scores)
    if metric == "cosine":
        dist = dist**2 / 2.0
    return Selection(picks, dist)
