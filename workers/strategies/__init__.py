"""Query strategies: which pool items a person should label next.

Each strategy is a pure function of arrays in its own module; ``select`` is the one
signature the rest of the engine calls, dispatching by name.
"""

from __future__ import annotations

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._validation import RandomState, Selection, rng_from
from workers.strategies.diversity import kcenter_greedy
from workers.strategies.random import random_sampling
from workers.strategies.uncertainty import uncertainty_sampling

NEEDS_MODEL = frozenset({"uncertainty"})
"""Strategies that score with a trained model's probabilities."""

STRATEGIES = ("uncertainty", "diversity", "random")
"""Every strategy name ``select`` accepts."""


def select(
    strategy: str,
    *,
    batch_size: int,
    probabilities: np.ndarray | None = None,
    features=None,
    labelled_features=None,
    random_state: RandomState = None,
    multi_label: bool = False,
    params: dict | None = None,
) -> Selection:
    """Pick ``batch_size`` pool rows with ``strategy``; indices in pick order with scores."""
    params = params or {}
    rng = rng_from(random_state)
    if strategy == "uncertainty":
        if probabilities is None:
            raise InvalidInput("uncertainty sampling needs the model's probabilities")
        return uncertainty_sampling(probabilities, batch_size, params.get("measure", "margin"), multi_label)
    if strategy == "diversity":
        return kcenter_greedy(features, batch_size, labelled_features, params.get("metric", "euclidean"))
    if strategy == "random":
        n = probabilities.shape[0] if probabilities is not None else features.shape[0]
        return random_sampling(n, batch_size, rng)
    raise InvalidInput(f"unknown query strategy {strategy!r}; use one of {STRATEGIES}")


__all__ = ["NEEDS_MODEL", "STRATEGIES", "Selection", "select"]
