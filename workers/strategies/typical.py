"""The cold start: typical items of the pool's clusters (TypiClust; Hacohen, Dekel and
Weinshall 2022, "Active Learning on a Budget", arXiv:2202.02794).

With few labels, what a model learns most from is items that stand for many others: dense
regions first, each region once. Farthest-first (k-center) does the opposite at the start:
its first picks are the pool's outliers, often short or odd items from one class. Here the
pool is clustered into as many clusters as there will be labelled items, and each pick is
the most typical item (the densest: the smallest mean distance to its nearest neighbours)
of the largest cluster that holds no labelled or picked item yet.

A ranking's head is built in stages of doubling size (``first`` items, then as many again,
and so on), each stage clustering the pool into ``picked + labelled + stage`` clusters, as
TypiClust does for each new budget: the first ten items cover the ten largest regions of
the pool, the next ten the largest of twenty that are still uncovered.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances

from workers import defaults
from workers.strategies._geometry import dense_projection
from workers.strategies._validation import RandomState, Selection, check_batch_size, check_features, rng_from

NEIGHBOURS = 20
"""Nearest neighbours a typicality is measured over (TypiClust's k)."""

MIN_CLUSTER = 5
"""Clusters smaller than this are picked from last (TypiClust's minimum cluster size)."""

MEMBERS_MEASURED = 1000
"""Most members of a cluster whose typicality is measured (a uniform sample beyond that)."""


def typical_clusters(
    features,
    batch_size: int,
    labelled_features=None,
    random_state: RandomState = None,
    first: int = defaults.TYPICAL_FIRST_STAGE,
) -> Selection:
    """``batch_size`` pool rows, the most typical item of one uncovered cluster each, in
    stages of doubling size; each score is the share of the clustered pool its cluster
    holds."""
    check_batch_size(batch_size)
    x = check_features(features, rows_only=True)
    n = x.shape[0]
    k = min(batch_size, n)
    if k == 0:
        return Selection(np.empty(0, dtype=np.int64), np.empty(0))
    rng = rng_from(random_state)
    sample = np.arange(n)
    if n > defaults.TYPICAL_SAMPLE:
        sample = np.sort(rng.choice(n, defaults.TYPICAL_SAMPLE, replace=False))
    rows = x[sample]
    m = 0
    if labelled_features is not None and labelled_features.shape[0] > 0:
        lab = check_features(labelled_features, "labelled_features")
        m = lab.shape[0]
        stack = (
            sp.vstack([sp.csr_matrix(rows), sp.csr_matrix(lab)])
            if sp.issparse(rows)
            else np.vstack([rows, lab])
        )
        z_all = dense_projection(stack, rng)
        z, z_lab = z_all[: len(sample)], z_all[len(sample) :]
    else:
        z, z_lab = dense_projection(rows, rng), None
    picks: list[int] = []  # positions in ``sample``
    scores: list[float] = []
    stage = max(1, first)
    while len(picks) < k:
        want = min(stage, k - len(picks))
        clusters = min(len(picks) + m + want, len(sample))
        assign, centres = _kmeans(z, clusters, rng)
        covered = np.zeros(clusters, dtype=bool)
        covered[assign[picks]] = True
        if z_lab is not None:
            covered[_nearest(z_lab, centres)] = True
        sizes = np.bincount(assign, minlength=clusters)
        order = np.lexsort((np.arange(clusters), -sizes))
        got = 0
        # clusters of a few items are outliers, not regions: taken only when nothing else is left
        order = np.concatenate([order[sizes[order] >= MIN_CLUSTER], order[sizes[order] < MIN_CLUSTER]])
        for c in order:
            if got == want or sizes[c] == 0:
                break
            if covered[c]:
                continue
            members = np.flatnonzero(assign == c)
            members = members[~np.isin(members, picks)]
            if not len(members):
                continue
            picks.append(int(members[_most_typical(z[members], rng)]))
            scores.append(sizes[c] / len(sample))
            got += 1
        if got < want:
            # fewer distinct regions than wanted (duplicates): the rest at random
            rest = np.setdiff1d(np.arange(len(sample)), picks)
            extra = rng.permutation(rest)[: want - got]
            picks += extra.tolist()
            scores += [0.0] * len(extra)
        stage = len(picks)
    return Selection(sample[np.array(picks, dtype=np.int64)], np.array(scores, dtype=np.float64))


def _kmeans(z: np.ndarray, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cluster and the centres, from one k-means run."""
    with warnings.catch_warnings():
        # identical rows leave fewer distinct points than clusters: empty clusters are skipped
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(clusters, n_init=1, max_iter=50, random_state=int(rng.integers(1 << 31))).fit(z)
    return km.labels_, km.cluster_centers_


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return pairwise_distances(points, centres).argmin(axis=1)


def _most_typical(z: np.ndarray, rng: np.random.Generator) -> int:
    """Position of the row with the smallest mean distance to its ``NEIGHBOURS`` nearest
    rows (the highest typicality); measured on a sample of a large cluster."""
    if len(z) <= 2:
        return 0
    measured = np.arange(len(z))
    if len(z) > MEMBERS_MEASURED:
        measured = np.sort(rng.choice(len(z), MEMBERS_MEASURED, replace=False))
    d = pairwise_distances(z[measured])
    neighbours = min(NEIGHBOURS, len(measured) - 1)
    # column 0 of each sorted row is the row itself
    nearest = np.partition(d, neighbours, axis=1)[:, 1 : neighbours + 1]
    return int(measured[np.argmin(nearest.mean(axis=1))])
