"""Peer implementations (scikit-activeml, modAL) driven with alrank's own model, so that
only the strategy differs. Benchmark-only: ``pip install -e '.[bench]'``."""

from __future__ import annotations

import numpy as np
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


def modal_ranked_batch(model, xp, xl, yl, k, rng):
    from modAL.batch import uncertainty_batch_sampling

    return _indices(uncertainty_batch_sampling(_Proba(model, xl), xp, n_instances=k))


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
feature space (``CoreSet``, ``Badge``); a wider one is refused, with its size. 2 GiB takes
SST-2's ``tfidf+minilm`` pool (6,920 x 22,973: 1.2 GiB) and refuses AG News's (10,001 x
76,945: 5.7 GiB, and BADGE's gradient embedding of it four times that)."""


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


def skal_coreset(model, xp, xl, yl, k, rng):
    from skactiveml.pool import CoreSet

    x, y, _, _ = _skal_inputs(model, xp, xl, yl)
    return _pool_rows(CoreSet(random_state=0).query(x, y, batch_size=k), len(yl))


def skal_badge(model, xp, xl, yl, k, rng):
    from skactiveml.pool import Badge

    x, y, clf, _ = _skal_inputs(model, xp, xl, yl)
    return _pool_rows(
        Badge(random_state=int(rng.integers(1 << 31))).query(x, y, clf=clf, fit_clf=False, batch_size=k),
        len(yl),
    )


def skal_greedy_bald(model, xp, xl, yl, k, rng):
    from skactiveml.pool import GreedyBALD

    from workers.models import train_ensemble

    x, y, clf, classes = _skal_inputs(model, xp, xl, yl, by_row=True)
    members = [
        _member(clone(clf.estimator), x, y, len(yl), m, classes)
        for m in train_ensemble(xl, list(yl), 5, 0.8, int(rng.integers(1 << 31)))
    ]
    out = GreedyBALD(random_state=0).query(x, y, ensemble=members, fit_ensemble=False, batch_size=k)
    return _pool_rows(out, len(yl))


PEERS = {
    "modAL:margin": modal_margin,
    "modAL:ranked_batch": modal_ranked_batch,
    "skactiveml:UncertaintySampling": skal_uncertainty,
    "skactiveml:CoreSet": skal_coreset,
    "skactiveml:Badge": skal_badge,
    "skactiveml:GreedyBALD": skal_greedy_bald,
}
