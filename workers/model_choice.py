"""``auto``: the schema's model kind, chosen by cross-validation on its labels.

Which model learns a pool best is a property of the pool: text features (TF-IDF, sparse
and wide) are learnt best by a linear model, numeric measurements often by trees. At each
retrain ``choose`` compares a few candidates by stratified k-fold accuracy on the training
labels (the evaluation sample never enters) and names the best; a candidate must beat the
kind chosen last (at first, logistic regression) by ``AUTO_MARGIN`` to replace it, so a tie
keeps what serves, and at first the cheaper, better-calibrated model. The choice stands
until the training labels have grown by ``AUTO_GROWTH`` (``workers.training.fit``);
``classifier_params.candidates`` narrows the set.

Sparse features (any TF-IDF part) train logistic regression without a comparison: trees on
tens of thousands of sparse columns cost more and lose on every text set measured
(``bench/numeric_pools.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from workers import defaults

AUTO_CANDIDATES = ("logistic_regression", "extra_trees", "random_forest", "hist_gradient_boosting")
"""What ``auto`` compares on dense features, the fallback first."""

AUTO_MARGIN = 0.005
"""Cross-validated accuracy a candidate must gain over the kind serving (at first, logistic
regression) to replace it."""


CHOOSABLE = (*AUTO_CANDIDATES, "linear_svm", "svc")
"""Kinds a project may list in ``classifier_params.candidates`` (naive Bayes needs TF-IDF,
which ``auto`` never compares on)."""


def candidates(x, n_classes: int, given: list[str] | None = None) -> tuple[str, ...]:
    """The kinds worth comparing on ``x`` (of ``given``, when the project lists them):
    gradient boosting grows a tree per class per round, so it is left out where classes
    are many (``AUTO_BOOSTING_MAX_CLASSES``); sparse features train the first alone."""
    kinds = tuple(given or AUTO_CANDIDATES)
    if sp.issparse(x):
        return kinds[:1]
    if n_classes > defaults.AUTO_BOOSTING_MAX_CLASSES and len(kinds) > 1:
        kinds = tuple(c for c in kinds if c != "hist_gradient_boosting")
    return kinds


Fit = Callable[[str, int, dict | None, object, np.ndarray], object]
"""fit(kind, random_state, params, x, y): a fitted scikit-learn estimator."""


Logits = Callable[[object, str, object], np.ndarray]
"""logits(estimator, kind, x): what the model's calibration temperature divides."""


def choose(
    x,
    y: np.ndarray,
    random_state: int,
    fit: Fit,
    logits: Logits,
    given: list[str] | None = None,
    incumbent: str | None = None,
) -> tuple[str, dict, np.ndarray | None]:
    """The kind to train on rows ``x`` with class indices ``y``, what the choice rests on
    (kept in the model history: each candidate's accuracy, the folds, the seconds, and the
    labels it was made on), and the chosen kind's out-of-fold logits, which calibrate its
    probabilities without refitting the folds (None when nothing was compared). Another
    kind must beat the ``incumbent`` (the kind chosen last; else the first candidate) by
    ``AUTO_MARGIN``: a model does not change kind on a difference the folds cannot tell."""
    started = time.perf_counter()
    kinds = candidates(x, int(y.max()) + 1, given)
    counts = np.bincount(y)
    if len(kinds) == 1 or len(y) < defaults.AUTO_MIN_LABELS or counts.min() < defaults.AUTO_FOLDS:
        if len(kinds) == 1:
            reason = "sparse text features" if sp.issparse(x) else "one candidate"
        else:
            reason = "too few labels to compare models"
        # no comparison to keep: the next retrain compares again
        return kinds[0], {"chosen": kinds[0], "reason": reason, "labels": 0}, None
    splitter = StratifiedKFold(defaults.AUTO_FOLDS, shuffle=True, random_state=random_state)
    folds = list(splitter.split(np.zeros(len(y)), y))
    accuracy: dict[str, float] = {}
    seconds: dict[str, float] = {}
    held_out: dict[str, np.ndarray] = {}
    for kind in kinds:
        t = time.perf_counter()
        z = np.zeros((len(y), 0))
        for train, held in folds:
            zf = logits(fit(kind, random_state, None, x[train], y[train]), kind, x[held])
            if z.shape[1] == 0:
                z = np.zeros((len(y), zf.shape[1]))
            z[held] = zf
        held_out[kind] = z
        accuracy[kind] = round(float((z.argmax(axis=1) == y).mean()), 4)
        seconds[kind] = round(time.perf_counter() - t, 3)
    keep = incumbent if incumbent in kinds else kinds[0]
    best = max(kinds, key=lambda k: accuracy[k])
    chosen = best if accuracy[best] >= accuracy[keep] + AUTO_MARGIN else keep
    runner_up = max((accuracy[k] for k in kinds if k != chosen), default=accuracy[chosen])
    return (
        chosen,
        {
            "chosen": chosen,
            "cv_accuracy": accuracy,
            "lead": round(accuracy[chosen] - runner_up, 4),
            "folds": defaults.AUTO_FOLDS,
            "labels": len(y),
            "seconds": seconds,
            "total_seconds": round(time.perf_counter() - started, 3),
        },
        held_out[chosen],
    )
