"""Query strategies: which pool items a person should label next.

Each strategy is a pure function of arrays in its own module; ``select`` is the one
signature the rest of the engine calls, dispatching by name. Features may be dense or CSR
(never densified); probabilities are (items, classes), or (members, items, classes) for
BALD's ensemble.
"""

from __future__ import annotations

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._validation import RandomState, Selection, check_batch_size, rng_from, top_k
from workers.strategies.badge import badge
from workers.strategies.bald import bald_scores
from workers.strategies.diverse import diverse_uncertainty
from workers.strategies.diversity import kcenter_greedy
from workers.strategies.hybrid import hybrid_shares, hybrid_weighted
from workers.strategies.uncertainty import uncertainty_scores

STRATEGIES = ("uncertainty", "diverse_uncertainty", "diversity", "badge", "bald", "hybrid", "random")
"""Every strategy name ``select`` accepts."""

NEEDS_MODEL = frozenset({"uncertainty", "diverse_uncertainty", "badge", "bald", "hybrid"})
"""Strategies that score with a trained model (the rest work from features alone)."""

BATCH_AWARE = frozenset({"diverse_uncertainty", "diversity", "badge", "hybrid"})
"""Strategies whose picks depend on the picks before them."""


def select(
    strategy: str,
    *,
    batch_size: int,
    probabilities: np.ndarray | None = None,
    member_probabilities: np.ndarray | None = None,
    features=None,
    labelled_features=None,
    random_state: RandomState = None,
    multi_label: bool = False,
    params: dict | None = None,
    exclude: np.ndarray | None = None,
) -> Selection:
    """Pick ``batch_size`` pool rows with ``strategy``: indices in pick order, with scores.

    ``exclude`` holds pool rows already taken (by an earlier share of a blend): never
    picked, and centres for the diversity-based strategies.
    """
    check_batch_size(batch_size)
    params = params or {}
    rng = rng_from(random_state)
    taken = exclude if exclude is not None else np.empty(0, dtype=np.int64)
    n = _pool_size(probabilities, member_probabilities, features)

    def masked_top(scores: np.ndarray) -> Selection:
        scores = scores.astype(np.float64, copy=True)
        scores[taken] = -np.inf
        idx = top_k(scores, min(batch_size, n - len(taken)))
        return Selection(idx, scores[idx])

    if strategy == "uncertainty":
        if probabilities is None:
            raise InvalidInput("uncertainty sampling needs the model's probabilities")
        return masked_top(uncertainty_scores(probabilities, params.get("measure", "margin"), multi_label))
    if strategy == "diverse_uncertainty":
        if probabilities is None:
            raise InvalidInput("diverse uncertainty sampling needs the model's probabilities")
        return diverse_uncertainty(
            uncertainty_scores(probabilities, params.get("measure", "margin"), multi_label),
            features,
            batch_size,
            rng,
            block=params.get("block"),
            prefilter=params.get("prefilter"),
            exclude=taken,
        )
    if strategy == "bald":
        if member_probabilities is None:
            raise InvalidInput("BALD needs the ensemble members' probabilities")
        return masked_top(bald_scores(member_probabilities))
    if strategy == "random":
        free = np.setdiff1d(np.arange(n), taken)
        idx = rng.permutation(free)[:batch_size].astype(np.int64)
        return Selection(idx, np.zeros(len(idx)))
    if strategy == "diversity":
        return kcenter_greedy(
            features, batch_size, labelled_features, params.get("metric", "euclidean"), initial_centres=taken
        )
    if strategy == "badge":
        if multi_label:
            raise InvalidInput("badge works on single-label schemas; use uncertainty or hybrid")
        if probabilities is None:
            raise InvalidInput("BADGE needs the model's probabilities")
        return badge(probabilities, features, batch_size, rng, initial_centres=taken)
    if strategy == "hybrid":
        if params.get("hybrid_shares"):

            def run(name: str, count: int, so_far: np.ndarray) -> Selection:
                both = np.union1d(taken, so_far).astype(np.int64)
                return select(
                    name,
                    batch_size=count,
                    probabilities=probabilities,
                    member_probabilities=member_probabilities,
                    features=features,
                    labelled_features=labelled_features,
                    random_state=rng,
                    multi_label=multi_label,
                    params=params,
                    exclude=both,
                )

            return hybrid_shares(params["hybrid_shares"], batch_size, run, n - len(taken))
        weights = params.get("hybrid_weights") or {"uncertainty": 0.7, "diversity": 0.3}
        return hybrid_weighted(
            weights,
            batch_size,
            probabilities=probabilities,
            member_probabilities=member_probabilities,
            features=features,
            labelled_features=labelled_features,
            random_state=rng,
            measure=params.get("measure", "margin"),
            multi_label=multi_label,
            metric=params.get("metric", "euclidean"),
        )
    raise InvalidInput(f"unknown query strategy {strategy!r}; use one of {STRATEGIES}")


def with_exploration(
    selection: Selection, n_items: int, fraction: float, random_state: RandomState = None
) -> Selection:
    """Replace the tail ``fraction`` of a batch with items drawn uniformly from the rest of
    the pool (never duplicating one); their scores are NaN."""
    k = len(selection.indices)
    n_random = round(k * fraction)
    n_random = min(n_random, n_items - (k - n_random))  # what the pool has left to draw
    if n_random <= 0:
        return selection
    keep = selection.indices[: k - n_random]
    rest = np.setdiff1d(np.arange(n_items), keep)
    drawn = rng_from(random_state).permutation(rest)[:n_random]
    return Selection(
        np.concatenate([keep, drawn]).astype(np.int64),
        np.concatenate([selection.scores[: k - n_random], np.full(len(drawn), np.nan)]),
    )


def _pool_size(probabilities, member_probabilities, features) -> int:
    if probabilities is not None:
        return int(np.asarray(probabilities).shape[0])
    if member_probabilities is not None:
        return int(np.asarray(member_probabilities).shape[1])
    if features is not None:
        return int(features.shape[0])
    raise InvalidInput("a strategy needs probabilities or features of the pool")


__all__ = ["BATCH_AWARE", "NEEDS_MODEL", "STRATEGIES", "Selection", "select", "with_exploration"]
