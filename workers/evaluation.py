"""Measuring a model on the random evaluation sample (active-learning labels are skewed by
design, so only a uniform sample says how good a model is)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from workers.models import LinearModel, predictions


def predict_labels(model: LinearModel, x) -> list:
    """The model's label for each row (a list of labels for multi-label)."""
    if x.shape[0] == 0:
        return []
    labels, _ = predictions(model, model.predict_proba(x))
    return labels


def evaluate_on(model: LinearModel, x, truth: list, multi_label: bool) -> dict:
    """Accuracy and macro-F1 on the labelled items of the random evaluation sample."""
    if not truth:
        return {"size": 0, "accuracy": None, "macro_f1": None}
    pred = predict_labels(model, x)
    if multi_label:
        acc = float(np.mean([set(p) == set(t) for p, t in zip(pred, truth, strict=True)]))
        f1 = None
    else:
        acc = float(accuracy_score(truth, pred))
        f1 = float(f1_score(truth, pred, average="macro"))
    return {"size": len(truth), "accuracy": acc, "macro_f1": f1}
