"""Labels the rest of the data contradicts, found by confident learning.

Each labelled item's class probabilities come from a model that did not train on it
(``LABEL_ISSUES_FOLDS``-fold cross-validation of the schema's own kind of model over every
labelled item, evaluation sample included). Confident learning (Northcutt, Jiang & Chuang
2021, arXiv:1911.00068; ``cleanlab.filter.find_label_issues``) estimates from them how often
each class is mislabelled as each other and flags that many of the labels the model is
surest are wrong. They are ranked by self-confidence: one minus the out-of-fold probability
of the label given. Multi-label schemas are checked label by label
(``cleanlab.multilabel_classification``). It runs in the worker's own process (``n_jobs=1``): cleanlab would
otherwise fork a pool, which must not happen inside a worker that holds threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers import defaults

FitPredict = Callable[[Any, list], Callable[[Any], np.ndarray] | None]
"""fit(x, targets) -> predict_proba(x) on the full class list, or None (too few classes)."""


@dataclass
class Issue:
    """One label the data contradicts."""

    item: str
    given: Any
    """The aggregated label the model trains on."""
    suggested: Any
    """The out-of-fold model's label."""
    score: float
    """One minus the out-of-fold probability of the label given (1: surely wrong)."""


def out_of_fold(
    fit_predict: FitPredict, x, targets: list, y: np.ndarray, classes: int, seed: int, folds: int
) -> np.ndarray | None:
    """(rows, classes) probabilities, each row from a model that did not see it; None when
    the labels are too few to split."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(targets)
    if n < 2 * folds:
        return None
    single = y.ndim == 1
    counts = np.bincount(y, minlength=classes) if single else None
    splitter: Any = (
        StratifiedKFold(min(folds, int(counts[counts > 0].min())), shuffle=True, random_state=seed % 2**32)
        if single and counts is not None and counts[counts > 0].min() >= 2
        else KFold(folds, shuffle=True, random_state=seed % 2**32)
    )
    proba = np.zeros((n, classes))
    prior = (np.bincount(y, minlength=classes) / n) if single else y.mean(axis=0)
    for train, test in splitter.split(np.zeros(n), y if single else None):
        predict = fit_predict(x[train], [targets[k] for k in train])
        proba[test] = predict(x[test]) if predict is not None else prior
    return proba


def find_issues(
    fit_predict: FitPredict,
    x,
    ids: list[str],
    targets: list,
    labels: list[str],
    multi_label: bool,
    seed: int,
    folds: int = defaults.LABEL_ISSUES_FOLDS,
) -> list[Issue] | None:
    """The label issues among ``ids`` (rows of ``x`` with their aggregated ``targets``),
    worst first; None when the labels are too few (or of one class) to cross-validate."""
    from cleanlab.filter import find_label_issues
    from cleanlab.multilabel_classification.filter import find_label_issues as find_multi_label_issues

    index = {lab: k for k, lab in enumerate(labels)}
    if multi_label:
        y = np.zeros((len(targets), len(labels)), dtype=np.int64)
        for r, chosen in enumerate(targets):
            y[r, [index[c] for c in chosen]] = 1
    else:
        y = np.array([index[t] for t in targets], dtype=np.int64)
    if len(np.unique(y if not multi_label else y.argmax(axis=1))) < 2:
        return None
    proba = out_of_fold(fit_predict, x, targets, y, len(labels), seed, folds)
    if proba is None:
        return None
    if multi_label:
        given_as_lists = [list(np.flatnonzero(row)) for row in y]
        ranked = find_multi_label_issues(
            given_as_lists, proba, return_indices_ranked_by="self_confidence", n_jobs=1
        )
        # the label's probability: the product over labels of agreeing with the given on/off
        agree = np.where(y == 1, proba, 1.0 - proba).prod(axis=1)
        suggested = [[labels[j] for j in np.flatnonzero(row >= 0.5)] for row in proba]
    else:
        present = np.unique(y)
        # confident learning counts classes that occur: drop the columns of those that do not
        local = {c: k for k, c in enumerate(present)}
        sub = proba[:, present]
        sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
        ranked = find_label_issues(
            np.array([local[c] for c in y]), sub, return_indices_ranked_by="self_confidence", n_jobs=1
        )
        agree = proba[np.arange(len(y)), y]
        suggested = [labels[j] for j in proba.argmax(axis=1)]
    return [
        Issue(ids[r], targets[r], suggested[r], round(float(1.0 - agree[r]), 4))
        for r in np.asarray(ranked, dtype=np.int64)[: defaults.LABEL_ISSUES_MAX]
    ]
