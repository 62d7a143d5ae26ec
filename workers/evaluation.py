"""Measuring a model on the random evaluation sample (active-learning labels are skewed by
design, so only a uniform sample says how good a model is), with 95% intervals.

- Accuracy: the Wilson score interval (Wilson 1927), which keeps its coverage on small
  samples and near 0 or 1, where the normal approximation does not.
- Macro-F1: a percentile bootstrap over the evaluation items (macro-F1 is not a proportion,
  so no closed form applies); ``BOOTSTRAP_ROUNDS`` resamples, seeded, so the same model on
  the same sample gets the same interval.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from workers import defaults
from workers.models import Model, predictions

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: two-sided 95% intervals."""


def predict_labels(model: Model, x) -> list:
    """The model's label for each row (a list of labels for multi-label)."""
    if x.shape[0] == 0:
        return []
    labels, _ = predictions(model, model.predict_proba(x))
    return labels


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n``."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes one end is exactly 0 or 1; rounding must not move it
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return lo, hi


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in ``truth`` or ``pred`` (as scikit-learn's
    ``f1_score(average='macro')``), on integer-coded labels."""
    conf = np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, -1)
    tp = np.diag(conf).astype(float)
    support, predicted = conf.sum(axis=1), conf.sum(axis=0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def bootstrap_macro_f1(truth: list, pred: list, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap 95% interval of macro-F1 over the evaluation items."""
    classes = {c: k for k, c in enumerate(sorted(set(truth) | set(pred), key=str))}
    t = np.array([classes[c] for c in truth])
    p = np.array([classes[c] for c in pred])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(t), size=(defaults.BOOTSTRAP_ROUNDS, len(t)))
    values = [macro_f1(t[d], p[d], len(classes)) for d in draws]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def correctness(pred: list, truth: list, multi_label: bool) -> np.ndarray:
    """Whether each prediction is right (multi-label: the whole set of labels)."""
    if multi_label:
        return np.array([set(p) == set(t) for p, t in zip(pred, truth, strict=True)], dtype=bool)
    return np.array([p == t for p, t in zip(pred, truth, strict=True)], dtype=bool)


def evaluate_on(model: Model, x, truth: list, multi_label: bool) -> dict:
    """Accuracy and macro-F1 on the labelled items of the random evaluation sample, each with
    its 95% interval."""
    return evaluation(predict_labels(model, x), truth, multi_label)


def evaluation(pred: list, truth: list, multi_label: bool) -> dict:
    """The evaluation record of predictions ``pred`` against ``truth``."""
    if not truth:
        return {"size": 0, "accuracy": None, "macro_f1": None}
    right = correctness(pred, truth, multi_label)
    out = {
        "size": len(truth),
        "accuracy": float(right.mean()),
        "accuracy_interval": list(wilson(float(right.sum()), len(truth))),
        "macro_f1": None,
        "macro_f1_interval": None,
        "interval": "95%: Wilson score for accuracy, percentile bootstrap for macro-F1",
    }
    if not multi_label:
        out["accuracy"] = float(accuracy_score(truth, pred))
        out["macro_f1"] = float(f1_score(truth, pred, average="macro"))
        out["macro_f1_interval"] = list(bootstrap_macro_f1(truth, pred, seed=len(truth)))
    return out
