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

from workers import defaults

# Relative slack on the pruning tests, so rounding can only make them measure more.
_SLACK = 1e-6
# Above this share of points to measure, one pass over all rows beats gathering them.
_FULL_PASS_FRACTION = 0.3
# When the tests keep nearly every point, the next few centres skip them and go straight
# to full passes (exact all the same).
_HOPELESS_FRACTION = 0.8
_SKIP_AFTER_FULL_PASS = 4


def _rows_dot(x, rows: np.ndarray | slice, c: int) -> np.ndarray:
    """<x_r, x_c> for the given rows, as float64."""
    sub = x if isinstance(rows, slice) and rows == slice(None) else x[rows]
    if sp.issparse(x):
        # one centre row made dense: a CSR matrix-vector product beats sparse x sparse
        v = np.asarray(x[c].toarray(), dtype=x.dtype).ravel()
        return np.asarray(sub @ v, dtype=np.float64).ravel()
    return np.asarray(sub @ x[c], dtype=np.float64).ravel()


def row_sq_norms(x) -> np.ndarray:
    if sp.issparse(x):
        return np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def _geometry_of_rows(x, cosine: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """(row scale, squared row norms): for cosine distance rows count as scaled to unit
    length (all-zero rows stay at zero), without copying them."""
    sq = row_sq_norms(x)
    if not cosine:
        return None, sq
    norms = np.sqrt(sq)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return scale, (sq > 0).astype(np.float64)


class FeatureSpace:
    """Euclidean or cosine geometry over dense or CSR features (never densified or copied)."""

    def __init__(self, x, metric: str = "euclidean") -> None:
        self.x = x
        self.n = x.shape[0]
        self.scale, self.sq_norms = _geometry_of_rows(x, metric == "cosine")

    def dot(self, rows: np.ndarray | slice, c: int) -> np.ndarray:
        d = _rows_dot(self.x, rows, c)
        if self.scale is not None:
            d *= self.scale[rows] * self.scale[c]
        return d

    def block_sq_dist(self, rows: np.ndarray | slice, cols: np.ndarray) -> np.ndarray:
        """Squared distances between pool rows and pool rows, as a (rows, cols) array."""
        prod = self.x[rows] @ self.x[cols].T
        d = np.asarray(prod.toarray() if sp.issparse(prod) else prod, dtype=np.float64)
        if self.scale is not None:
            d *= self.scale[rows][:, None] * self.scale[cols][None, :]
        out = self.sq_norms[rows][:, None] + self.sq_norms[cols][None, :] - 2.0 * d
        return np.maximum(out, 0.0)

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
        self.scale, self.sq_norms = _geometry_of_rows(other, space.scale is not None)
        self.n = other.shape[0]

    def _dots(self, rows_x, rows_y) -> np.ndarray:
        """<x_r, y_s> for a block of pool rows and external rows (scaled for cosine)."""
        block = self.y[rows_y]
        if sp.issparse(block):
            block = block.toarray()  # a block of centres, never the pool
        prod = self.space.x[rows_x] @ block.T
        # float32 pools keep float32 products: the same precision BLAS gave them
        d = np.asarray(prod.toarray() if sp.issparse(prod) else prod)
        if not np.issubdtype(d.dtype, np.floating):
            d = d.astype(np.float64)
        if self.scale is not None:
            assert self.space.scale is not None
            d *= self.space.scale[rows_x][:, None] * self.scale[rows_y][None, :]
        return d

    def nearest(self, block: int = 256, row_block: int = 32_768) -> tuple[np.ndarray, np.ndarray]:
        """Squared distance of every pool row to its nearest external row, and which row.

        Worked in tiles of pool rows by external rows, so memory stays small on any pool.
        """
        n = self.space.n
        best = np.full(n, np.inf)
        arg = np.zeros(n, dtype=np.int64)
        xsq = self.space.sq_norms
        for r0 in range(0, n, row_block):
            rows = np.arange(r0, min(r0 + row_block, n))
            for start in range(0, self.n, block):
                cols = np.arange(start, min(start + block, self.n))
                d = self._dots(slice(r0, r0 + len(rows)), cols)
                d *= -2.0
                d += xsq[rows][:, None]
                d += self.sq_norms[cols][None, :]
                j = d.argmin(axis=1)
                v = d[np.arange(len(rows)), j]
                better = v < best[rows]
                best[rows[better]] = v[better]
                arg[rows[better]] = cols[j[better]]
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
        self._skip_tests = 0
        if self.external is not None:
            self.min_sq, self.assign = self.external.nearest()
            self.measured += space.n * self.n_external

    def _sq_dist(self, rows, c: int) -> np.ndarray:
        sq = self.space.sq_norms
        d = self.space.dot(rows, c)
        d *= -2.0
        d += sq[rows]
        d += sq[c]
        return np.maximum(d, 0.0, out=d)

    def add(self, c: int) -> None:
        """Make pool row ``c`` a centre."""
        k = self.n_external + len(self.centres)
        if k == 0:
            self.min_sq = self._sq_dist(slice(None), c)
            self.assign[:] = 0
            self.measured += self.space.n
        elif self._skip_tests > 0:
            # the tests kept most points lately (no structure to exploit): measure all
            self._skip_tests -= 1
            self._full_pass(c, k)
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
            mask = (dcc[self.assign] < reach) & (gap < radius * (1.0 + _SLACK) + _SLACK)
            cand = np.flatnonzero(mask)
            if len(cand) > _FULL_PASS_FRACTION * self.space.n:
                # gathering most rows costs more than one straight pass over all of them
                self._full_pass(c, k)
                if len(cand) > _HOPELESS_FRACTION * self.space.n:
                    self._skip_tests = _SKIP_AFTER_FULL_PASS
            elif len(cand):
                d = self._sq_dist(cand, c)
                closer = d < self.min_sq[cand]
                upd = cand[closer]
                self.min_sq[upd] = d[closer]
                self.assign[upd] = k
                self.measured += len(cand)
        self.min_sq[c] = 0.0
        self.assign[c] = k
        self.centres.append(c)

    def _full_pass(self, c: int, k: int) -> None:
        d = self._sq_dist(slice(None), c)
        closer = d < self.min_sq
        np.minimum(self.min_sq, d, out=self.min_sq)
        self.assign[closer] = k
        self.measured += self.space.n

    def add_many(self, rows: np.ndarray) -> None:
        for c in rows:
            self.add(int(c))


class LazyNearest:
    """Greedy argmax of a score that can only fall as centres are added, with lazy updates.

    k-center greedy picks the point farthest from its nearest centre. Adding a centre can
    only lower distances, so a distance computed before the last few centres arrived is an
    upper bound of the current one. The pick is the point of largest bound whose bound is
    up to date; only points whose stale bound tops the pool are measured against the
    centres they have not seen (lazy greedy evaluation, Minoux 1978). The picks are
    exactly those of a full update after every pick, at a fraction of the cost, in any
    geometry: no pruning test is needed.

    ``objective(bound, rows)`` turns squared-distance bounds of some rows into the values
    to maximise (the bounds themselves by default); it must not decrease as the distance
    grows. Values are kept per row and recomputed only for rows whose bound changes.
    """

    _BLOCK = 64

    def __init__(
        self,
        space: FeatureSpace,
        external: ExternalCentres | None = None,
        initial: np.ndarray | None = None,
        objective=None,
    ) -> None:
        self.space = space
        n = space.n
        self.centres: list[int] = [int(c) for c in (initial if initial is not None else [])]
        self.bound = np.full(n, np.inf)
        if external is not None and external.n > 0:
            self.bound, _ = external.nearest()
        if self.centres:
            cols = np.array(self.centres)
            for start in range(0, n, 8192):
                rows = slice(start, min(start + 8192, n))
                d = self.space.block_sq_dist(rows, cols).min(axis=1)
                np.minimum(self.bound[rows], d, out=self.bound[rows])
        self.seen = np.full(n, len(self.centres), dtype=np.int64)
        self.objective = objective
        self.measured = 0
        self.taken = np.zeros(n, dtype=bool)
        self.taken[np.array(self.centres, dtype=np.int64)] = True
        self.recompute_values()

    def recompute_values(self) -> None:
        """Values of every row from its bound (after the objective itself changed)."""
        objective = self.objective
        self.values = self.bound.copy() if objective is None else objective(self.bound, slice(None))
        self.values[self.taken] = -np.inf

    def _refresh(self, rows: np.ndarray) -> None:
        m = len(self.centres)
        lo = int(self.seen[rows].min())
        cols = np.array(self.centres[lo:m])
        d = self.space.block_sq_dist(rows, cols).min(axis=1)
        self.bound[rows] = np.minimum(self.bound[rows], d)
        self.seen[rows] = m
        values = self.bound[rows] if self.objective is None else self.objective(self.bound[rows], rows)
        self.values[rows] = np.where(self.taken[rows], -np.inf, values)
        self.measured += len(rows) * len(cols)

    def pick(self) -> tuple[int, float, float]:
        """The argmax of the objective over points not yet picked: (row, its exact squared
        distance, its value); ties go to the lower index."""
        m = len(self.centres)
        n = len(self.values)
        while True:
            i = int(np.argmax(self.values))
            if self.seen[i] == m:
                return i, float(self.bound[i]), float(self.values[i])
            block = min(self._BLOCK, n - 1)
            top = np.argpartition(-self.values, block)[: block + 1] if block > 0 else np.array([i])
            top = top[self.seen[top] < m]
            self._refresh(top if i in top else np.append(top, i))

    def add(self, c: int) -> None:
        self.centres.append(int(c))
        self.taken[c] = True
        self.values[c] = -np.inf


def dense_projection(x, rng: np.random.Generator, width: int = defaults.PROJECTION_WIDTH) -> np.ndarray:
    """``x`` as dense float64 rows for k-means; rows wider than ``width`` columns are
    projected to that width first.

    A sparse random projection (each column adds into ``PROJECTION_HITS`` output columns
    with random signs; Kane and Nelson 2014) keeps the distances between a few thousand
    rows to within a few per cent (Johnson-Lindenstrauss). k-means on TF-IDF's tens of
    thousands of sparse columns beside an embedding costs about a second per
    ``diverse_uncertainty`` block; on 256 dense columns, tens of milliseconds
    (``bench/freshness.py``)."""
    if x.shape[1] > width:
        x = x @ _sparse_projection(x.shape[1], width, rng)
    if sp.issparse(x):
        x = x.toarray()
    # float64: scikit-learn measures float32 distances in chunks upcast one at a time,
    # which makes k-means++ seeding several times slower
    return np.asarray(x, dtype=np.float64)


PROJECTION_HITS = 4
"""Output columns each input column of a projection adds into."""


def _sparse_projection(width_in: int, width_out: int, rng: np.random.Generator) -> sp.csr_matrix:
    """A ``width_in`` x ``width_out`` matrix with ``PROJECTION_HITS`` entries of
    +-1/sqrt(hits) per row: it preserves squared lengths in expectation and costs one
    multiply-add per stored feature value and hit."""
    hits = min(PROJECTION_HITS, width_out)
    # two hits of a row may land on one column: they add up, still +-1/sqrt(hits) each
    cols = rng.integers(0, width_out, size=(width_in, hits))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(width_in, hits)) / np.sqrt(hits)
    rows = np.repeat(np.arange(width_in), hits)
    return sp.csr_matrix((signs.ravel(), (rows, cols.ravel())), shape=(width_in, width_out))
