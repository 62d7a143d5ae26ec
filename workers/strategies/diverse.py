"""Diverse uncertainty: the most uncertain items, spread over the regions where the model
hesitates (Zhdanov 2019, "Diverse mini-batch Active Learning", arXiv:1901.05954).

A batch taken straight from the top of an uncertainty ranking often holds near-copies:
twenty questions about one city's population, all on the same stretch of the decision
boundary, teach the model about as much as one of them. Here the ``prefilter`` x k most
uncertain items are grouped into k clusters by k-means, each item weighted by its
uncertainty, and the batch takes from each cluster the item nearest its centre: as
uncertain a batch as the clusters allow, with no two items from one cluster.

A ranking longer than one batch is built in blocks of ``block`` items, each block
clustering the most uncertain items the blocks before it left.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from workers import defaults
from workers.exceptions import InvalidInput
from workers.strategies._geometry import dense_projection
from workers.strategies._validation import (
    RandomState,
    Selection,
    check_batch_size,
    check_features,
    empty_selection,
    rng_from,
    top_k,
)


def diverse_uncertainty(
    scores: np.ndarray,
    features,
    batch_size: int,
    random_state: RandomState = None,
    block: int | None = None,
    prefilter: int | None = None,
    exclude: np.ndarray | None = None,
) -> Selection:
    """``batch_size`` rows, most uncertain first within each block of ``block`` (default:
    the whole batch is one block); each row's score is its uncertainty. ``exclude`` holds
    rows never to pick (already taken by another share of a blend). ``prefilter`` defaults to
    ``DIVERSE_PREFILTER``."""
    check_batch_size(batch_size)
    x = check_features(features, rows_only=True)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[0] != x.shape[0]:
        raise InvalidInput("scores and features must have one row per pool item")
    prefilter = defaults.DIVERSE_PREFILTER if prefilter is None else prefilter
    if prefilter < 1:
        raise InvalidInput("prefilter must be at least 1")
    rng = rng_from(random_state)
    block = block or batch_size
    available = np.ones(len(scores), dtype=bool)
    if exclude is not None:
        available[exclude] = False
    picks: list[np.ndarray] = []
    left = min(batch_size, int(available.sum()))
    while left > 0:
        k = min(block, left)
        candidates = top_k(np.where(available, scores, -np.inf), prefilter * k)
        candidates = candidates[available[candidates]]
        chosen = candidates[_representatives(x[candidates], scores[candidates], k, rng)]
        chosen = chosen[np.lexsort((chosen, -scores[chosen]))]
        picks.append(chosen)
        available[chosen] = False
        left -= len(chosen)
    if not picks:
        return empty_selection()
    idx = np.concatenate(picks).astype(np.int64)
    return Selection(idx, scores[idx])


def _representatives(x, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of k rows of ``x``: one per cluster of weighted k-means, the row nearest
    its centre (the next nearest where two clusters would share one)."""
    if x.shape[0] <= k:
        return np.arange(x.shape[0])
    # the least uncertain candidate weighs almost nothing, the most uncertain the most
    w = weights - weights.min() + 1e-6
    # k-means on TF-IDF's sparse columns beside an embedding cost about a second per block;
    # in a random projection to ``DIVERSE_PROJECTION_WIDTH`` columns it costs tens of
    # milliseconds and picks batches as good (bench/freshness.py, bench/README.md)
    x = dense_projection(x, rng, defaults.DIVERSE_PROJECTION_WIDTH)
    with warnings.catch_warnings():
        # identical rows leave fewer distinct points than clusters: the loop below copes
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(
            k, n_init=1, max_iter=defaults.DIVERSE_ITERATIONS, random_state=int(rng.integers(1 << 31))
        ).fit(x, sample_weight=w)
    distances = km.transform(x)
    taken = np.zeros(x.shape[0], dtype=bool)
    out = np.empty(k, dtype=np.int64)
    for c in range(k):
        for j in np.argsort(distances[:, c], kind="stable"):
            if not taken[j]:
                out[c], taken[j] = j, True
                break
    return out
