"""Peer implementations (scikit-activeml, modAL) driven with alrank's own model, so that
only the strategy differs. Benchmark-only: ``pip install -e '.[bench]'``."""

from __future__ import annotations

import numpy as np
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


def _skal_inputs(model, xp, xl, yl):
    import scipy.sparse as sp
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.utils import MISSING_LABEL

    classes = sorted(set(yl) | set(model.classes))
    index = {c: i for i, c in enumerate(classes)}
    x = sp.vstack([xl, xp], format="csr") if sp.issparse(xp) else np.vstack([xl, xp])
    y = np.full(x.shape[0], MISSING_LABEL)
    y[: len(yl)] = [index[v] for v in yl]
    clf = SklearnClassifier(LogisticRegression(max_iter=200), classes=list(range(len(classes))))
    clf.fit(xl, y[: len(yl)])
    load_into(clf.estimator_, model, classes)
    return x, y, clf, classes


def _pool_rows(out, n_labelled: int) -> np.ndarray:
    return _indices(out) - n_labelled


def skal_uncertainty(model, xp, xl, yl, k, rng):
    from skactiveml.pool import UncertaintySampling

    x, y, clf, _ = _skal_inputs(model, xp, xl, yl)
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
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import GreedyBALD

    from workers.models import train_ensemble

    x, y, _, classes = _skal_inputs(model, xp, xl, yl)
    members = []
    for m in train_ensemble(xl, list(yl), 5, 0.8, int(rng.integers(1 << 31))):
        member = SklearnClassifier(LogisticRegression(max_iter=200), classes=list(range(len(classes))))
        member.fit(xl, y[: len(yl)])
        load_into(member.estimator_, m, classes)
        members.append(member)
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
