"""BALD's committee for a model kind that has none of its own: bootstrap replicas of the
schema's model (a forest's own sub-forests serve instead, ``TreeModel.committee_proba``)."""

from __future__ import annotations

import numpy as np

from workers.models import Model, train_single_label


def train_ensemble(
    x,
    y: list[str],
    n_estimators: int,
    bootstrap_fraction: float,
    random_state: int = 0,
    classifier: str = "logistic_regression",
    params: dict | None = None,
) -> list[Model]:
    """Bootstrap replicates of the single-label model, for BALD.

    Each member trains on a sample drawn with replacement; a draw that misses every class
    but one is drawn again (a one-class model has no disagreement to offer).
    """
    rng = np.random.default_rng(random_state)
    y_arr = np.asarray(y)
    n = len(y_arr)
    size = max(2, round(bootstrap_fraction * n))
    members: list[Model] = []
    for m in range(n_estimators):
        for _ in range(20):
            rows = rng.integers(0, n, size)
            if len(set(y_arr[rows])) >= 2:
                break
        else:
            rows = np.arange(n)
        member = train_single_label(x[rows], y_arr[rows].tolist(), random_state + m + 1, classifier, params)
        member.metrics = {}
        members.append(member)
    return members
