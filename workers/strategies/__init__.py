"""Query strategies: which pool items a person should label next.

Each strategy is a pure function of arrays in its own module. ``REGISTRY`` names them and
states what each needs (a model's probabilities, an ensemble's, features) and whether its
picks depend on the picks before it; ``select`` is the one signature the service's ranking
and the replay both call. Features may be dense or CSR (never densified); probabilities are
(items, classes), or (members, items, classes) for BALD's ensemble.

Adding a strategy: write its function in a module of its own and add one ``Strategy`` to
``REGISTRY`` with a ``pick`` that calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workers.exceptions import InvalidInput
from workers.strategies._validation import RandomState, Selection, check_batch_size, others, rng_from, top_k
from workers.strategies.badge import badge
from workers.strategies.bald import bald_scores
from workers.strategies.diverse import diverse_uncertainty
from workers.strategies.diversity import kcenter_greedy
from workers.strategies.hybrid import hybrid_shares, hybrid_weighted
from workers.strategies.uncertainty import uncertainty_scores


@dataclass(frozen=True)
class Pool:
    """What a strategy may read about the unlabelled pool, and the rows already taken."""

    size: int
    probabilities: np.ndarray | None
    member_probabilities: np.ndarray | None
    features: object
    labelled_features: object
    multi_label: bool
    taken: np.ndarray

    def need_probabilities(self, who: str) -> np.ndarray:
        if self.probabilities is None:
            raise InvalidInput(f"{who} needs the model's probabilities")
        return self.probabilities

    def top(self, scores: np.ndarray, k: int) -> Selection:
        """The ``k`` best-scored rows not taken."""
        scores = scores.astype(np.float64, copy=True)
        scores[self.taken] = -np.inf
        idx = top_k(scores, min(k, self.size - len(self.taken)))
        return Selection(idx, scores[idx])


Pick = Callable[[Pool, int, np.random.Generator, dict], Selection]
"""pick(pool, k, rng, params): ``k`` rows in pick order, with their scores."""


@dataclass(frozen=True)
class Strategy:
    """A query strategy and what it needs."""

    name: str
    pick: Pick
    needs_model: bool
    """Scores with a trained model's probabilities (before the first model: the cold start)."""
    batch_aware: bool
    """Each pick depends on the picks before it, so a ranking's head is chosen pick by pick."""
    needs_ensemble: bool = False
    """Scores with an ensemble's probabilities (BALD's bootstrap members)."""


def _uncertainty(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    p = pool.need_probabilities("uncertainty sampling")
    return pool.top(uncertainty_scores(p, params.get("measure", "margin"), pool.multi_label), k)


def _diverse_uncertainty(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    p = pool.need_probabilities("diverse uncertainty sampling")
    return diverse_uncertainty(
        uncertainty_scores(p, params.get("measure", "margin"), pool.multi_label),
        pool.features,
        k,
        rng,
        block=params.get("block"),
        prefilter=params.get("prefilter"),
        exclude=pool.taken,
    )


def _diversity(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    return kcenter_greedy(
        pool.features,
        k,
        pool.labelled_features,
        params.get("metric", "euclidean"),
        initial_centres=pool.taken,
    )


def _badge(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    if pool.multi_label:
        raise InvalidInput("badge works on single-label schemas; use uncertainty or hybrid")
    return badge(pool.need_probabilities("BADGE"), pool.features, k, rng, initial_centres=pool.taken)


def _bald(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    if pool.member_probabilities is None:
        raise InvalidInput("BALD needs the ensemble members' probabilities")
    return pool.top(bald_scores(pool.member_probabilities), k)


def _random(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    free = others(pool.size, pool.taken)
    idx = rng.permutation(free)[:k].astype(np.int64)
    return Selection(idx, np.zeros(len(idx)))


def _hybrid(pool: Pool, k: int, rng: np.random.Generator, params: dict) -> Selection:
    if params.get("hybrid_shares"):

        def run(name: str, count: int, so_far: np.ndarray) -> Selection:
            both = np.union1d(pool.taken, so_far).astype(np.int64)
            share = Pool(**{**pool.__dict__, "taken": both})
            return REGISTRY[name].pick(share, count, rng, params)

        return hybrid_shares(params["hybrid_shares"], k, run, pool.size - len(pool.taken))
    return hybrid_weighted(
        params.get("hybrid_weights") or {"uncertainty": 0.7, "diversity": 0.3},
        k,
        probabilities=pool.probabilities,
        member_probabilities=pool.member_probabilities,
        features=pool.features,
        labelled_features=pool.labelled_features,
        random_state=rng,
        measure=params.get("measure", "margin"),
        multi_label=pool.multi_label,
        metric=params.get("metric", "euclidean"),
    )


REGISTRY: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("uncertainty", _uncertainty, needs_model=True, batch_aware=False),
        Strategy("diverse_uncertainty", _diverse_uncertainty, needs_model=True, batch_aware=True),
        Strategy("diversity", _diversity, needs_model=False, batch_aware=True),
        Strategy("badge", _badge, needs_model=True, batch_aware=True),
        Strategy("bald", _bald, needs_model=True, batch_aware=False, needs_ensemble=True),
        Strategy("hybrid", _hybrid, needs_model=True, batch_aware=True),
        Strategy("random", _random, needs_model=False, batch_aware=False),
    )
}
"""Every strategy by name."""

STRATEGIES: tuple[str, ...] = tuple(REGISTRY)
"""Every strategy name ``select`` accepts."""


def needs_ensemble(strategy: str, params: dict) -> bool:
    """Whether ``strategy`` with ``params`` reads an ensemble's probabilities: BALD, or a
    hybrid that weighs or shares a BALD term."""
    if strategy == "hybrid":
        blend = set(params.get("hybrid_shares") or {}) | set(params.get("hybrid_weights") or {})
        return any(REGISTRY[name].needs_ensemble for name in blend if name in REGISTRY)
    return REGISTRY[strategy].needs_ensemble


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
    if strategy not in REGISTRY:
        raise InvalidInput(f"unknown query strategy {strategy!r}; use one of {STRATEGIES}")
    pool = Pool(
        size=_pool_size(probabilities, member_probabilities, features),
        probabilities=probabilities,
        member_probabilities=member_probabilities,
        features=features,
        labelled_features=labelled_features,
        multi_label=multi_label,
        taken=exclude if exclude is not None else np.empty(0, dtype=np.int64),
    )
    return REGISTRY[strategy].pick(pool, batch_size, rng_from(random_state), params or {})


def _pool_size(probabilities, member_probabilities, features) -> int:
    if probabilities is not None:
        return int(np.asarray(probabilities).shape[0])
    if member_probabilities is not None:
        return int(np.asarray(member_probabilities).shape[1])
    if features is not None:
        return int(features.shape[0])
    raise InvalidInput("a strategy needs probabilities or features of the pool")


__all__ = ["REGISTRY", "STRATEGIES", "Selection", "Strategy", "needs_ensemble", "select"]
