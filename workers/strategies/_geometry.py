"""Nearest-centre distances, kept up to date as centres are added, without rescanning.

k-center greedy and k-means++ seeding (BADGE) both add one centre at a time and need,
for every pool point, its squared distance to the nearest centre. Recomputing that for
the whole pool at every pick costs one full pass over the features per pick. Instead,
as in Elkan's k-means (Elkan 2003), the triangle inequality rules most points out:
a point x whose nearest centre is a can only move to a new centre c when
d(a, c) < 2 d(x, a), and never when (|x| - |c|)^2 >= d(x, a)^2. Only the points that
pass both tests are measured, so the distances stay exactly those of a full rescan.

A ``Space`` gives inner products between pool rows; it never materialises anything
larger than the features (the BADGE space uses <g_i, g_j> = <a_i, a_j> <x_i, x_j>).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Relative slack on the pruning tests, so rounding can only make them measure more.
_SLACK = 1e-6


def _rows_dot(x, rows: np.ndarray | slice, c: int) -> np.ndarray:
    """<x_r, x_c> for the given rows, as float64."""
    sub = x[rows]
    v = x[c]
    if sp.issparse(x):
        out = sub @ v.T
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float64).ravel()
    return np.asarray(sub @ v, dtype=np.float64).ravel()


def row_sq_norms(x) -> np.ndarray:
    if sp.issparse(x):
        return np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


class FeatureSpace:
    """Euclidean or cosine geometry over dense or CSR features (never densified or copied)."""

    def __init__(self, x, metric: str = "euclidean") -> None:
        self.x = x
        self.n = x.shape[0]
        sq = row_sq_norms(x)
        if metric == "cosine":
            norms = np.sqrt(sq)
            self.scale: np.ndarray | None = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            self.sq_norms = (sq > 0).astype(np.float64)
        else:
            self.scale = None
            self.sq_norms = sq

    def dot(self, rows: np.ndarray | slice, c: int) -> np.ndarray:
        d = _rows_dot(self.x, rows, c)
        if self.scale is not None:
            d *= self.scale[rows] * self.scale[c]
        return d

    def sq_dist_to_mean(self) -> np.ndarray:
        """Squared distance of every row to the mean of the (scaled) rows."""
        x = self.x
        if self.scale is not None:
            mean = np.asarray(x.T @ self.scale, dtype=np.float64).ravel() / self.n
            dots = np.asarray(x @ mean, dtype=np.float64).ravel() * self.scale
        else:
            mean = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
            dots = np.asarray(x @ mean, dtype=np.float64).ravel()
        return np.maximum(self.sq_norms - 2.0 * dots + mean @ mean, 0.0)

    def external(self, other) -> ExternalCentres:
        """Rows of another matrix (the labelled items), in this space, as fixed centres."""
        return ExternalCentres(self, other)


class ExternalCentres:
    """Centres that are not pool rows: the labelled items of k-center greedy."""

    def __init__(self, space: FeatureSpace, other) -> None:
        self.space = space
        self.y = other
        sq = row_sq_norms(other)
        if space.scale is not None:
            norms = np.sqrt(sq)
            self.scale: np.ndarray | None = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            self.sq_norms = (sq > 0).astype(np.float64)
        else:
            self.scale = None
            self.sq_norms = sq
        self.n = other.shape[0]

    def _dots(self, rows_x, rows_y) -> np.ndarray:
        """<x_r, y_s> for a block of pool rows and external rows (scaled for cosine)."""
        prod = self.space.x[rows_x] @ self.y[rows_y].T
        d = np.asarray(prod.toarray() if sp.issparse(prod) else prod, dtype=np.float64)
        if self.scale is not None:
            assert self.space.scale is not None
            d *= self.space.scale[rows_x][:, None] * self.scale[rows_y][None, :]
        return d

    def nearest(self, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Squared distance of every pool row to its nearest external row, and which row."""
        n = self.space.n
        best = np.full(n, np.inf)
        arg = np.zeros(n, dtype=np.int64)
        xsq = self.space.sq_norms
        rows = np.arange(n)
        for start in range(0, self.n, block):
            cols = np.arange(start, min(start + block, self.n))
            d = xsq[:, None] - 2.0 * self._dots(rows, cols) + self.sq_norms[cols][None, :]
            j = d.argmin(axis=1)
            v = d[rows, j]
            better = v < best
            best[better] = v[better]
            arg[better] = cols[j[better]]
        return np.maximum(best, 0.0), arg

    def sq_dist_to(self, c: int) -> np.ndarray:
        """Squared distance from pool row c to every external row."""
        d = self.sq_norms + self.space.sq_norms[c] - 2.0 * self._dots(np.array([c]), slice(None)).ravel()
        return np.maximum(d, 0.0)


class GradientSpace:
    """BADGE's gradient embeddings g_i = a_i (x) x_i, a_i = p_i - onehot(argmax p_i).

    <g_i, g_j> = <a_i, a_j> <x_i, x_j>, so the (classes x features)-wide embedding is never
    built (Ash et al. 2020, arXiv:1906.03671).
    """

    def __init__(self, probabilities: np.ndarray, x) -> None:
        p = np.asarray(probabilities, dtype=np.float64)
        a = p.copy()
        a[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
        self.a = a
        self.x = x
        self.n = x.shape[0]
        self.sq_norms = np.einsum("ij,ij->i", a, a) * row_sq_norms(x)

    def dot(self, rows: np.ndarray | slice, c: int) -> np.ndarray:
        return (self.a[rows] @ self.a[c]) * _rows_dot(self.x, rows, c)


class NearestCentre:
    """Squared distance of every point to its nearest centre, updated per added centre.

    Centres are numbered in the order they arrive: first the external ones (labelled items,
    if any), then pool rows passed to ``add``.
    """

    def __init__(self, space: FeatureSpace | GradientSpace, external: ExternalCentres | None = None) -> None:
        self.space = space
        self.norms = np.sqrt(space.sq_norms)
        self.min_sq = np.full(space.n, np.inf)
        self.assign = np.full(space.n, -1, dtype=np.int64)
        self.centres: list[int] = []
        self.external = external if external is not None and external.n > 0 else None
        self.n_external = self.external.n if self.external is not None else 0
        self.measured = 0  # point-to-centre distances computed, for the benchmark's report
        if self.external is not None:
            self.min_sq, self.assign = self.external.nearest()
            self.measured += space.n * self.n_external

    def _sq_dist(self, rows, c: int) -> np.ndarray:
        sq = self.space.sq_norms
        d = sq[rows] + sq[c] - 2.0 * self.space.dot(rows, c)
        return np.maximum(d, 0.0)

    def add(self, c: int) -> None:
        """Make pool row ``c`` a centre."""
        k = self.n_external + len(self.centres)
        if k == 0:
            self.min_sq = self._sq_dist(slice(None), c)
            self.assign[:] = 0
            self.measured += self.space.n
        else:
            parts = []
            if self.external is not None:
                parts.append(self.external.sq_dist_to(c))
            if self.centres:
                parts.append(self._sq_dist(np.array(self.centres), c))
            dcc = np.sqrt(np.concatenate(parts))  # new centre to every old one
            radius = np.sqrt(self.min_sq)
            reach = 2.0 * radius * (1.0 + _SLACK) + _SLACK
            gap = np.abs(self.norms - self.norms[c])
            cand = np.flatnonzero((dcc[self.assign] < reach) & (gap < radius * (1.0 + _SLACK) + _SLACK))
            if cand.size:
                d = self._sq_dist(cand, c)
                closer = d < self.min_sq[cand]
                upd = cand[closer]
                self.min_sq[upd] = d[closer]
                self.assign[upd] = k
            self.measured += cand.size
        self.min_sq[c] = 0.0
        self.assign[c] = k
        self.centres.append(c)

    def add_many(self, rows: np.ndarray) -> None:
        for c in rows:
            self.add(int(c))
