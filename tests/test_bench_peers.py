"""The benchmark's exact coordinates for sparse pools and its incremental ranked batch: the
peers' figures on TF-IDF features rest on both giving what the peers would on the features."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import pairwise_distances_argmin_min

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from _peers import Geometry, _ranked_batch

from workers.models import LinearModel


@pytest.fixture
def pool():
    """A sparse pool wider than it is tall, with a duplicated row, as TF-IDF pools are."""
    x = sp.random(
        60, 400, density=0.05, random_state=np.random.default_rng(3), format="csr", dtype=np.float32
    )
    x = sp.vstack([x, x[7]], format="csr")
    return x


def test_geometry_keeps_inner_products_and_is_narrow(pool):
    g = Geometry(pool)
    dense = pool.toarray().astype(np.float64)
    assert g.z.shape[1] <= pool.shape[0] < pool.shape[1]
    np.testing.assert_allclose(g.z @ g.z.T, dense @ dense.T, atol=1e-10)


def test_geometry_finds_rows_in_any_order(pool):
    g = Geometry(pool)
    order = np.random.default_rng(0).permutation(pool.shape[0])
    found = g.rows(pool[order])
    np.testing.assert_array_equal(pool[found].toarray(), pool[order].toarray())
    with pytest.raises(KeyError):
        g.rows(sp.csr_matrix(np.ones((1, pool.shape[1]), dtype=np.float32)))


def test_geometry_carries_a_model_over(pool):
    rng = np.random.default_rng(1)
    model = LinearModel(
        ["a", "b", "c"], rng.normal(size=(3, pool.shape[1])).astype(np.float32), rng.normal(size=3)
    )
    model.temperature = 1.7
    g = Geometry(pool)
    zp, zl, moved = g.place(model, pool[10:], pool[:10])
    np.testing.assert_allclose(moved.predict_proba(zp), model.predict_proba(pool[10:]), atol=1e-6)
    np.testing.assert_allclose(zl, g.z[:10], atol=1e-12)  # row 7 has a twin: either will do


def _modal_rule(uncertainty, xp, xl, k):
    """modAL's ranked batch as modAL computes it: every pick recomputes each unlabelled
    item's distance to the whole labelled set, the picks joining it."""
    free = np.ones(xp.shape[0], dtype=bool)
    labelled, picks = xl, []
    for _ in range(k):
        n_free = int(free.sum())
        alpha = n_free / (n_free + labelled.shape[0])
        _, dist = pairwise_distances_argmin_min(xp[free], labelled)
        scores = alpha * (1 - 1 / (1 + dist)) + (1 - alpha) * uncertainty[free]
        best = int(np.flatnonzero(free)[np.argmax(scores)])
        picks.append(best)
        free[best] = False
        labelled = np.vstack([labelled, xp[[best]]])
    return picks


def test_incremental_ranked_batch_matches_the_full_recomputation():
    rng = np.random.default_rng(2)
    xp, xl = rng.normal(size=(200, 8)), rng.normal(size=(15, 8))
    uncertainty = rng.uniform(0, 0.5, size=200)
    picks, nearest = _ranked_batch(uncertainty, xp, xl, 25)
    assert picks.tolist() == _modal_rule(uncertainty, xp, xl, 25)
    assert len(set(picks.tolist())) == 25
    _, expected = pairwise_distances_argmin_min(xp, np.vstack([xl, xp[picks]]))
    np.testing.assert_allclose(nearest, expected, atol=1e-6)  # sqrt of a rounding error at 0
    # the next round, from the distances kept, as from scratch
    rest = np.setdiff1d(np.arange(200), picks)
    kept, _ = _ranked_batch(uncertainty[rest], xp[rest], np.vstack([xl, xp[picks]]), 25, nearest[rest])
    assert kept.tolist() == _modal_rule(uncertainty[rest], xp[rest], np.vstack([xl, xp[picks]]), 25)


def test_incremental_ranked_batch_matches_modal():
    pytest.importorskip("modAL")
    from modAL.batch import uncertainty_batch_sampling

    rng = np.random.default_rng(4)
    xp, xl = rng.normal(size=(150, 6)), rng.normal(size=(12, 6))
    proba = rng.dirichlet(np.ones(3), size=150)

    class Learner:
        on_transformed = False
        X_training = xl

        def predict_proba(self, x):
            return proba

    theirs = np.asarray(uncertainty_batch_sampling(Learner(), xp, n_instances=20)[0]).ravel()
    ours, _ = _ranked_batch(1 - proba.max(axis=1), xp, xl, 20)
    np.testing.assert_array_equal(ours, theirs)
