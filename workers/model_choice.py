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
from workers.calibration import fit_temperature

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


RetrainCost = Callable[[str, object, float], float]
"""cost(kind, estimator fitted on a fold, seconds a fold's fit took): the seconds a retrain
with that kind would take (training with calibration, and a pass over the pool)."""


def choose(
    x,
    y: np.ndarray,
    random_state: int,
    fit: Fit,
    logits: Logits,
    given: list[str] | None = None,
    incumbent: str | None = None,
    cost: RetrainCost | None = None,
    drawn: np.ndarray | None = None,
) -> tuple[str, dict, np.ndarray | None]:
    """The kind to train on rows ``x`` with class indices ``y``, what the choice rests on
    (kept in the model history: each candidate's accuracy, the folds, the seconds, and the
    labels it was made on), and the chosen kind's out-of-fold logits, which calibrate its
    probabilities without refitting the folds (None when nothing was compared). Another
    kind must beat the ``incumbent`` (the kind chosen last; else the first candidate) by
    ``AUTO_MARGIN``: a model does not change kind on a difference the folds cannot tell.
    With ``cost``, a kind whose retrains would take longer than ``AUTO_RETRAIN_SECONDS`` is
    not chosen (the first candidate always may be): ``auto`` keeps the loop fresh.

    ``drawn`` marks the rows drawn uniformly from the pool (the exploration share). Active
    learning's own picks crowd the class boundaries, where every kind errs and the kind
    that errs least there need not be the best on the pool; once ``AUTO_MIN_DRAWN`` rows are
    drawn, each kind is scored on its out-of-fold predictions of those alone (the folds
    still train on every label), which estimates its accuracy on the pool itself."""
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
    scored = drawn if drawn is not None and drawn.sum() >= defaults.AUTO_MIN_DRAWN else np.ones(len(y), bool)
    accuracy: dict[str, float] = {}
    seconds: dict[str, float] = {}
    retrain: dict[str, float] = {}
    held_out: dict[str, np.ndarray] = {}
    for kind in kinds:
        t = time.perf_counter()
        z = np.zeros((len(y), 0))
        for train, held in folds:
            fold_started = time.perf_counter()
            est = fit(kind, random_state, None, x[train], y[train])
            fold_seconds = time.perf_counter() - fold_started
            zf = logits(est, kind, x[held])
            if z.shape[1] == 0:
                z = np.zeros((len(y), zf.shape[1]))
            z[held] = zf
        held_out[kind] = z
        accuracy[kind] = round(float((z.argmax(axis=1) == y)[scored].mean()), 4)
        seconds[kind] = round(time.perf_counter() - t, 3)
        if cost is not None:
            retrain[kind] = round(cost(kind, est, fold_seconds), 3)
    keep = incumbent if incumbent in kinds else kinds[0]
    slow = [k for k in kinds[1:] if retrain.get(k, 0.0) > defaults.AUTO_RETRAIN_SECONDS]
    eligible = [k for k in kinds if k not in slow]
    if keep in slow:  # the kind serving has grown too slow for its pool
        keep = kinds[0]
    best = max(eligible, key=lambda k: accuracy[k])
    chosen = best if accuracy[best] >= accuracy[keep] + AUTO_MARGIN else keep
    runner_up = max((accuracy[k] for k in eligible if k != chosen), default=accuracy[chosen])
    record = {
        "chosen": chosen,
        "cv_accuracy": accuracy,
        "lead": round(accuracy[chosen] - runner_up, 4),
        "folds": defaults.AUTO_FOLDS,
        "labels": len(y),
        "scored_on": int(scored.sum()),
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    if cost is not None:
        record |= {"retrain_seconds": retrain, "too_slow": slow}
    return chosen, record, held_out[chosen]


def compare(
    x,
    y: list[str],
    random_state: int,
    fit: Fit,
    logits: Logits,
    given: list[str] | None,
    incumbent: str | None,
    pool,
    pool_size: int,
    drawn: np.ndarray | None = None,
) -> dict:
    """``choose`` on rows ``x`` labelled ``y`` (class names), with each kind's retrain timed
    from the comparison: its fold fits scaled to a retrain's (the model and the served refit,
    each on half as many rows again as a fold) and its logits on ``pool``, a sample of the
    pool's rows, scaled to ``pool_size`` rows and doubled for the model's space. The record
    of the choice, which the model history keeps, with the chosen kind's ``temperature``
    fitted on its out-of-fold logits: the retrains that train the choice reuse it, and fit
    no calibration folds of their own."""
    classes = sorted(set(y))
    if len(classes) < 2:
        first = (given or AUTO_CANDIDATES)[0]
        return {"chosen": first, "reason": "one class among the labels", "labels": 0}
    index = {c: i for i, c in enumerate(classes)}
    fits = 2

    def cost(kind: str, est, fold_seconds: float) -> float:
        started = time.perf_counter()
        logits(est, kind, pool)
        per_row = (time.perf_counter() - started) / max(1, pool.shape[0])
        return fold_seconds * 1.5 * fits + per_row * pool_size * 2

    yi = np.array([index[v] for v in y])
    _, record, z = choose(x, yi, random_state, fit, logits, given, incumbent, cost, drawn)
    if z is not None:
        record["temperature"] = round(fit_temperature(z, yi), 4)
    return record
