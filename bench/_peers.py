"""Peer implementations (scikit-activeml, modAL) driven with alrank's own model, so that
only the strategy differs. Benchmark-only: ``pip install -e '.[bench]'``."""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression


def load_into(est: LogisticRegression, model, classes: list[str]) -> None:
    """Give a scikit-learn estimator alrank's model: softmax((Wx + b) / T) is the softmax of
    (W/T)x + b/T, so the peer sees exactly the same probabilities."""
    index = {c: i for i, c in enumerate(classes)}
    rows = [index[c] for c in model.classes]
    coef = np.zeros((len(classes), model.coef.shape[1]))
    icpt = np.full(len(classes), -1e9)  # a class the model never saw: probability 0
    coef[rows] = model.coef / model.temperature
    icpt[rows] = model.intercept / model.temperature
    est.coef_, est.intercept_, est.classes_ = coef, icpt, np.arange(len(classes))


class _Proba:
    """The least a modAL query needs: predict_proba, and the labelled rows."""

    on_transformed = False

    def __init__(self, model, x_labelled) -> None:
        self.model = model
        self.X_training = x_labelled

    def predict_proba(self, x):
        return self.model.predict_proba(x)


def _indices(out) -> np.ndarray:
    idx = out[0] if isinstance(out, tuple) else out
    return np.asarray(idx, dtype=np.int64).ravel()


def modal_margin(model, xp, xl, yl, k, rng):
    from modAL.uncertainty import margin_sampling

    return _indices(margin_sampling(_Proba(model, xl), xp, n_instances=k))


def modal_ranked_batch(model, xp, xl, yl, k, rng, geometry: Geometry | None = None):
    """modAL's ``uncertainty_batch_sampling`` (Cardoso et al. 2017's ranked batch).

    modAL recomputes every unlabelled item's distance to the whole labelled set for each of
    the k picks, which on a 7,000-item pool with up to 1,000 labels costs it over 15 minutes
    of one core per replay. With ``geometry``, the same rule runs on the pool's exact
    coordinates, keeping each item's distance to its nearest labelled item from pick to pick
    and from round to round (``_ranked_batch``); its picks are checked against modAL's own
    function, run on the real features, while the labelled set is small enough for that to
    be cheap."""
    from modAL.batch import uncertainty_batch_sampling

    if geometry is None:
        return _indices(uncertainty_batch_sampling(_Proba(model, xl), xp, n_instances=k))
    # the uncertainty comes from the model on the features: only distances need z
    uncertainty = 1.0 - model.predict_proba(xp).max(axis=1)  # modAL's classifier_uncertainty
    in_pool, labelled = geometry.rows(xp), geometry.rows(xl)
    zp, zl = geometry.z[in_pool], geometry.z[labelled]
    kept = geometry.nearest_labelled.get(tuple(sorted(labelled)))
    picks, nearest = _ranked_batch(uncertainty, zp, zl, k, None if kept is None else kept[in_pool])
    after = np.full(len(geometry.z), np.nan)
    after[in_pool] = nearest
    geometry.nearest_labelled = {tuple(sorted([*labelled, *in_pool[picks]])): after}
    if xl.shape[0] <= RANKED_BATCH_CHECK:
        theirs = _indices(uncertainty_batch_sampling(_Proba(model, xl), xp, n_instances=k))
        if not np.array_equal(theirs, picks):
            raise AssertionError(f"ranked batch differs from modAL's: {picks.tolist()} vs {theirs.tolist()}")
    return picks


RANKED_BATCH_CHECK = 50
"""Labelled rows up to which every ranked batch is also asked of modAL itself and compared
(the first two rounds of a replay with 20 seed labels and batches of 25)."""


def _ranked_batch(
    uncertainty: np.ndarray, zp: np.ndarray, zl: np.ndarray, k: int, nearest: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """modAL's ``ranked_batch`` with the nearest-labelled distances kept between picks: the
    score alpha (1 - 1 / (1 + d)) + (1 - alpha) u, alpha = |U| / (|U| + |L|), each pick
    leaving U and joining L. ``nearest``: each item's distance to ``zl``'s nearest row, when
    known. Returns the picks and the distances once they have joined ``zl``."""
    from sklearn.metrics import pairwise_distances_argmin_min

    if nearest is None:
        _, nearest = pairwise_distances_argmin_min(zp, zl)
    squared = np.einsum("ij,ij->i", zp, zp)
    free = np.ones(len(zp), dtype=bool)
    n_labelled = len(zl)
    picks = []
    for _ in range(min(k, len(zp))):
        n_free = int(free.sum())
        alpha = n_free / (n_free + n_labelled)
        scores = alpha * (1 - 1 / (1 + nearest[free])) + (1 - alpha) * uncertainty[free]
        best = int(np.flatnonzero(free)[np.argmax(scores)])
        picks.append(best)
        free[best] = False
        n_labelled += 1
        to_best = np.sqrt(np.maximum(squared + squared[best] - 2 * (zp @ zp[best]), 0))
        nearest = np.minimum(nearest, to_best)
    return np.asarray(picks, dtype=np.int64), nearest


class _Shared:
    """The pool's feature matrix, shared by every copy of an estimator that holds it
    (scikit-learn and scikit-activeml deep-copy estimators on fit)."""

    def __init__(self, x) -> None:
        self.x = x

    def __deepcopy__(self, memo):
        return self


class RowLookup(ClassifierMixin, BaseEstimator):
    """Logistic regression whose X is a column of row numbers into a shared feature matrix.

    scikit-activeml validates X as a dense array, so a sparse TF-IDF pool cannot be handed to
    it. The strategies that only read the model's probabilities (``UncertaintySampling``,
    ``GreedyBALD``) never look at X themselves; given row numbers and this estimator, they see
    exactly the probabilities alrank's model gives on the real features."""

    def __init__(self, rows: _Shared | None = None) -> None:
        self.rows = rows

    def _features(self, X):
        return self.rows.x[np.asarray(X)[:, 0].astype(np.int64)]

    # scikit-activeml's wrapper copies the signatures of fit and predict_proba: X, not x
    def fit(self, X, y):
        self.lr_ = LogisticRegression(max_iter=200).fit(self._features(X), y)
        return self

    @property
    def classes_(self):
        return self.lr_.classes_

    def predict_proba(self, X):
        return self.lr_.predict_proba(self._features(X))


DENSE_LIMIT = 2 << 30
"""Bytes: the largest sparse pool densified for the strategies that measure distances in
feature space (``CoreSet``, ``Badge``) when they are called without a ``Geometry``; a wider
one is refused, with its size. ``bench/label_efficiency.py`` hands them the pool's
``Geometry`` instead, which fits every pool of ``../shared/datasets``."""


def _densified(x) -> np.ndarray:
    size = x.shape[0] * x.shape[1] * 8
    if size > DENSE_LIMIT:
        raise MemoryError(
            f"a dense copy of the {x.shape[0]} x {x.shape[1]} pool would take {size / 2**30:.1f} GiB"
        )
    return x.toarray().astype(np.float64)


def _skal_inputs(model, xp, xl, yl, by_row: bool = False):
    """The stacked pool (labelled rows first), its labels with the unlabelled missing, and
    a classifier holding alrank's model. scikit-activeml takes dense arrays only: with
    ``by_row`` (strategies that only read probabilities) a sparse pool is handed over as row
    numbers (``RowLookup``), otherwise as a dense copy when that fits ``DENSE_LIMIT``."""
    import scipy.sparse as sp
    from skactiveml.utils import MISSING_LABEL

    classes = sorted(set(yl) | set(model.classes))
    index = {c: i for i, c in enumerate(classes)}
    x = sp.vstack([xl, xp], format="csr") if sp.issparse(xp) else np.vstack([xl, xp])
    y = np.full(x.shape[0], MISSING_LABEL)
    y[: len(yl)] = [index[v] for v in yl]
    if by_row and sp.issparse(x):
        estimator, x = RowLookup(_Shared(x)), np.arange(x.shape[0], dtype=np.float64)[:, None]
    else:
        if sp.issparse(x):
            x = _densified(x)
        estimator = LogisticRegression(max_iter=200)
    clf = _member(estimator, x, y, len(yl), model, classes)
    return x, y, clf, classes


def _member(estimator, x, y, n_labelled: int, model, classes: list[str]):
    """A fitted scikit-activeml classifier around ``estimator`` that gives ``model``'s
    probabilities."""
    from skactiveml.classifier import SklearnClassifier

    clf = SklearnClassifier(estimator, classes=list(range(len(classes))))
    clf.fit(x[:n_labelled], y[:n_labelled])
    load_into(getattr(clf.estimator_, "lr_", clf.estimator_), model, classes)
    return clf


def _pool_rows(out, n_labelled: int) -> np.ndarray:
    return _indices(out) - n_labelled


def skal_uncertainty(model, xp, xl, yl, k, rng):
    from skactiveml.pool import UncertaintySampling

    x, y, clf, _ = _skal_inputs(model, xp, xl, yl, by_row=True)
    out = UncertaintySampling(method="margin_sampling", random_state=0).query(
        x, y, clf=clf, fit_clf=False, batch_size=k
    )
    return _pool_rows(out, len(yl))


def skal_coreset(model, xp, xl, yl, k, rng, geometry: Geometry | None = None):
    from skactiveml.pool import CoreSet

    if geometry is not None:  # CoreSet reads no model: the coordinates alone
        xp, xl = geometry.coords(xp), geometry.coords(xl)
    x, y, _, _ = _skal_inputs(model, xp, xl, yl)
    return _pool_rows(CoreSet(random_state=0).query(x, y, batch_size=k), len(yl))


def skal_badge(model, xp, xl, yl, k, rng, geometry: Geometry | None = None):
    from skactiveml.pool import Badge

    if geometry is not None:
        xp, xl, model = geometry.place(model, xp, xl)
    x, y, clf, _ = _skal_inputs(model, xp, xl, yl)
    return _pool_rows(
        Badge(random_state=int(rng.integers(1 << 31))).query(x, y, clf=clf, fit_clf=False, batch_size=k),
        len(yl),
    )


def skal_greedy_bald(model, xp, xl, yl, k, rng):
    from skactiveml.pool import GreedyBALD

    from workers.ensembles import train_ensemble

    x, y, clf, classes = _skal_inputs(model, xp, xl, yl, by_row=True)
    members = [
        _member(clone(clf.estimator), x, y, len(yl), m, classes)
        for m in train_ensemble(xl, list(yl), 5, 0.8, int(rng.integers(1 << 31)))
    ]
    out = GreedyBALD(random_state=0).query(x, y, ensemble=members, fit_ensemble=False, batch_size=k)
    return _pool_rows(out, len(yl))


class Geometry:
    """Exact dense coordinates for a sparse pool, as narrow as the pool has rows.

    ``CoreSet``, ``Badge`` and the ranked batch read the features only through distances
    and inner products between pool items (BADGE's gradient embeddings too: their inner
    products are (p_i - e_i).(p_j - e_j) x_i.x_j), and a linear model only through its
    logits. Coordinates z_i with z_i.z_j = x_i.x_j keep all of them: z = V L^1/2 from the
    eigendecomposition V L V^T of the pool's Gram matrix X X^T. Their width is the pool's
    rank, at most its row count: SST-2's ``tfidf+minilm`` pool is 6,920 x 22,973, AG
    News's 10,001 x 76,945 (5.7 GiB dense, now 0.75 GiB). A model's logits on the pool carry
    over to coefficients (X W^T)^T V L^-1/2 on z, checked at every use (``place``)."""

    RELATIVE_FLOOR = 1e-10
    """Eigenvalues below this share of the largest are rounding noise: their directions
    carry no distance, and dividing by their roots would amplify the noise."""

    def __init__(self, x) -> None:
        x = sp.csr_matrix(x)
        self._dtype = x.dtype
        self._x = x.astype(np.float64)
        values, vectors = np.linalg.eigh((self._x @ self._x.T).toarray())
        keep = values > values[-1] * self.RELATIVE_FLOOR
        root = np.sqrt(values[keep])
        self.z = vectors[:, keep] * root
        self._to_coef = vectors[:, keep] / root
        self._row = {_row_key(x, i): i for i in range(x.shape[0])}
        self.nearest_labelled: dict[tuple, np.ndarray] = {}
        """The ranked batch's distances to the nearest labelled item, for the next round."""

    def rows(self, m) -> np.ndarray:
        """The pool rows of the rows of ``m`` (every one must be in the pool)."""
        m = sp.csr_matrix(m, dtype=self._dtype)
        return np.fromiter((self._row[_row_key(m, i)] for i in range(m.shape[0])), np.int64, m.shape[0])

    def coords(self, m) -> np.ndarray:
        """The coordinates of the rows of ``m``."""
        return self.z[self.rows(m)]

    def model(self, model):
        """``model`` with coefficients for z: the same logits on every pool row."""
        logits = self._x @ model.coef.astype(np.float64).T
        return dataclasses.replace(model, coef=(self._to_coef.T @ logits).T)

    def place(self, model, xp, xl):
        """The coordinates of the unlabelled and labelled rows and the model for them; raises
        when the model's probabilities on z stray from those on the features."""
        zp, zl, moved = self.coords(xp), self.coords(xl), self.model(model)
        gap = float(np.abs(moved.predict_proba(zp) - model.predict_proba(xp)).max())
        if gap > 1e-4:
            raise AssertionError(f"probabilities on the exact coordinates differ by {gap:.2g}")
        return zp, zl, moved


def _row_key(m: sp.csr_matrix, i: int) -> bytes:
    lo, hi = m.indptr[i], m.indptr[i + 1]
    return m.indices[lo:hi].tobytes() + m.data[lo:hi].tobytes()


USE_GEOMETRY = ("modAL:ranked_batch", "skactiveml:CoreSet", "skactiveml:Badge")


def bind(name: str, x_pool, cache: dict):
    """The picker for peer ``name`` on this pool: the distance-based peers get the pool's
    ``Geometry`` when it is sparse (one per pool, kept in ``cache``)."""
    picker = PEERS[name]
    if name not in USE_GEOMETRY or not sp.issparse(x_pool):
        return picker
    if "geometry" not in cache:
        cache["geometry"] = Geometry(x_pool)
    return partial(picker, geometry=cache["geometry"])


PEERS = {
    "modAL:margin": modal_margin,
    "modAL:ranked_batch": modal_ranked_batch,
    "skactiveml:UncertaintySampling": skal_uncertainty,
    "skactiveml:CoreSet": skal_coreset,
    "skactiveml:Badge": skal_badge,
    "skactiveml:GreedyBALD": skal_greedy_bald,
}
