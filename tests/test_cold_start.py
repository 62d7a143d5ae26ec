"""The cold start covers the pool: typical items of its clusters, largest first."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from workers.ranking import rank_pool
from workers.settings import AL_DEFAULTS
from workers.strategies.diversity import kcenter_greedy
from workers.strategies.typical import typical_clusters

SIZES = [3000, 1500, 800, 400, 200, 100, 60, 40]


def planted(seed: int = 0, outliers: int = 20):
    """Eight clusters of very different sizes, and far-flung outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (len(SIZES), 20))
    x = np.vstack(
        [c + rng.normal(0, 1, (s, 20)) for c, s in zip(centres, SIZES, strict=True)]
        + [rng.normal(0, 40, (outliers, 20))]
    )
    cluster = np.concatenate([np.full(s, i) for i, s in enumerate(SIZES)] + [np.full(outliers, -1)])
    return x.astype(np.float32), cluster


def test_the_first_picks_cover_every_planted_cluster():
    x, cluster = planted()
    sel = typical_clusters(x, 20, None, np.random.default_rng(1))
    # the first stage (ten clusters) spends a pick or two on the outliers at most
    assert set(range(len(SIZES))) <= set(cluster[sel.indices[:12]].tolist())
    assert (cluster[sel.indices[:10]] >= 0).sum() >= 7
    assert cluster[sel.indices[0]] == 0  # the largest region first
    # k-center greedy, farthest first, starts on the outliers instead
    far = kcenter_greedy(x, 10)
    assert (cluster[far.indices[1:]] == -1).all()


def test_picks_are_typical_not_edge_items():
    x, cluster = planted()
    sel = typical_clusters(x, 10, None, np.random.default_rng(2))
    for i in sel.indices:
        c = cluster[i]
        if c < 0:
            continue
        members = x[cluster == c]
        # the pick sits near its cluster's centre: closer than most members
        to_centre = np.linalg.norm(members - members.mean(axis=0), axis=1)
        assert np.linalg.norm(x[i] - members.mean(axis=0)) < np.quantile(to_centre, 0.25)


def test_labelled_items_count_as_covered():
    x, cluster = planted()
    # the labelled items already cover the three largest clusters
    labelled = np.vstack([x[cluster == c][:3] for c in range(3)])
    sel = typical_clusters(x, 5, labelled, np.random.default_rng(3))
    assert not set(cluster[sel.indices].tolist()) & {0, 1, 2}


def test_sparse_features_and_a_sampled_pool():
    rng = np.random.default_rng(4)
    n = 12_000  # above the sample the clusters are fitted on
    words = rng.integers(0, 4, n)
    rows = sp.csr_matrix(
        (
            np.ones(n * 3),
            (
                np.repeat(np.arange(n), 3),
                (words * 1000)[:, None].repeat(3, 1).ravel() + rng.integers(0, 30, n * 3),
            ),
        ),
        shape=(n, 5000),
    )
    sel = typical_clusters(rows, 12, None, rng)
    assert len(set(sel.indices.tolist())) == 12
    assert set(words[sel.indices[:6]].tolist()) == {0, 1, 2, 3}


def test_the_ranking_s_cold_start_is_typical_by_default():
    x, cluster = planted()
    ranking = rank_pool(
        "diverse_uncertainty", x, None, dict(AL_DEFAULTS), np.random.default_rng(5), depth=100
    )
    assert ranking.strategy == "cold_start"
    assert set(range(len(SIZES))) <= set(cluster[ranking.order[:12]].tolist())
    assert sorted(ranking.order.tolist()) == list(range(len(x)))
    kcenter = rank_pool(
        "diverse_uncertainty",
        x,
        None,
        {**AL_DEFAULTS, "cold_start_strategy": "diverse"},
        np.random.default_rng(5),
    )
    assert (cluster[kcenter.order[1:10]] == -1).all()
