"""From a trained model (or none yet) to a ranking of the whole unlabelled pool.

Score-based strategies order the whole pool by score. Batch-aware ones (diverse
uncertainty, diversity, BADGE, hybrid) choose the head of the ranking as batches would be
chosen (one pick at a time; diverse uncertainty a block of ``DIVERSE_BLOCK`` at a time),
for as many items as annotators will take before the next ranking (``batch_aware_depth``);
the rest of the pool follows by uncertainty (or at random when there is no model). Before
the first model, the head is the cold start: typical items of the pool's largest clusters
(``workers.strategies.typical``), k-center greedy or a random order, as the project says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers import defaults
from workers.features.columns import is_sparse
from workers.strategies import REGISTRY, select
from workers.strategies._validation import others
from workers.strategies.typical import typical_clusters
from workers.strategies.uncertainty import uncertainty_scores


@dataclass
class Ranking:
    """Candidate rows in rank order, each row's score, and the strategy that produced them."""

    order: np.ndarray
    scores: np.ndarray
    strategy: str


def strategy_params(al: dict, features) -> dict:
    """A strategy's parameters from a project's settings (or a replay's), for its pool."""
    params: dict = {
        "measure": al["uncertainty_measure"],
        # TF-IDF rows differ in length for reasons unrelated to content: compare angles
        "metric": "cosine" if is_sparse(features) else "euclidean",
        "block": defaults.DIVERSE_BLOCK,
    }
    if al.get("hybrid_shares"):
        params["hybrid_shares"] = al["hybrid_shares"]
    else:
        params["hybrid_weights"] = al.get("hybrid_weights") or defaults.HYBRID_WEIGHTS
    return params


def batch_aware_depth(al: dict, leased: int) -> int:
    """How much of the ranking a batch-aware strategy orders one batch at a time: what
    annotators take before the next ranking replaces it, with room to spare.

    A retrain comes every ``update_frequency`` labels (each item needing
    ``min_annotations_per_instance``), and the items leased now are handed out already;
    four retrain intervals, or twice the leases, cover the wait for the next ranking. At
    least ``MIN_BATCH_AWARE_DEPTH`` (two blocks), at most ``BATCH_AWARE_DEPTH``. Ordering
    the head costs about a third of a second per block of 25 with the default features
    (k-means per block), so a depth that follows the serving rate keeps retrains fresh."""
    interval = al["update_frequency"] * al["min_annotations_per_instance"]
    wanted = max(defaults.MIN_BATCH_AWARE_DEPTH, 4 * interval, 2 * leased)
    return min(wanted, defaults.BATCH_AWARE_DEPTH)


def rank_pool(
    strategy: str,
    features,
    labelled_features,
    al: dict,
    rng: np.random.Generator,
    probabilities: np.ndarray | None = None,
    member_probabilities: np.ndarray | None = None,
    multi_label: bool = False,
    depth: int = defaults.BATCH_AWARE_DEPTH,
) -> Ranking:
    """The candidates in rank order; a batch-aware strategy (or the cold start) orders the
    first ``depth``. With ``max_instances_to_reorder`` set, a random sample of that many
    candidates is ranked and the rest follow in random order (Potato's cap on reordering)."""
    n = features.shape[0]
    cap = al.get("max_instances_to_reorder")
    if cap and n > cap:
        sample = np.sort(rng.choice(n, cap, replace=False))
        inner = rank_pool(
            strategy,
            features[sample],
            labelled_features,
            {**al, "max_instances_to_reorder": None},
            rng,
            probabilities[sample] if probabilities is not None else None,
            member_probabilities[:, sample] if member_probabilities is not None else None,
            multi_label,
            depth,
        )
        rest = rng.permutation(others(n, sample))
        scores = np.zeros(n)
        scores[sample] = inner.scores
        return Ranking(np.concatenate([sample[inner.order], rest]).astype(np.int64), scores, inner.strategy)
    params = strategy_params(al, features)
    if strategy in REGISTRY and REGISTRY[strategy].needs_model and probabilities is None:
        strategy = "cold_start"
    cold = al.get("cold_start_strategy", defaults.COLD_START_STRATEGY)
    if strategy == "cold_start" and cold == "random":
        return Ranking(rng.permutation(n).astype(np.int64), np.zeros(n), "random")
    scores = np.zeros(n)
    if strategy == "cold_start" or REGISTRY[strategy].batch_aware:
        if strategy == "cold_start":
            depth = min(depth, defaults.COLD_START_DEPTH)
        if strategy == "cold_start" and cold == "typical":
            head = typical_clusters(features, min(depth, n), labelled_features, rng)
        else:
            head = select(
                "diversity" if strategy == "cold_start" else strategy,
                batch_size=min(depth, n),
                probabilities=probabilities,
                member_probabilities=member_probabilities,
                features=features,
                labelled_features=labelled_features,
                random_state=rng,
                multi_label=multi_label,
                params=params,
            )
        rest = others(n, head.indices)
        if probabilities is not None:
            u = uncertainty_scores(probabilities, params["measure"], multi_label)[rest]
            rest = rest[np.argsort(-u, kind="stable")]
        else:
            rest = rng.permutation(rest)
        scores[head.indices] = np.nan_to_num(head.scores)
        return Ranking(np.concatenate([head.indices, rest]).astype(np.int64), scores, strategy)
    chosen = select(
        strategy,
        batch_size=n,
        probabilities=probabilities,
        member_probabilities=member_probabilities,
        features=features,
        random_state=rng,
        multi_label=multi_label,
        params=params,
    )
    scores[chosen.indices] = chosen.scores
    return Ranking(chosen.indices, scores, strategy)


def balance_classes(
    order: np.ndarray,
    predicted: np.ndarray,
    shares: np.ndarray,
    labelled: np.ndarray,
    depth: int,
) -> np.ndarray:
    """``order`` with its first ``depth`` positions taken so that the labelled items and the
    head together keep each class's share of the pool.

    ``predicted[r]`` is candidate ``r``'s predicted class, ``shares`` the pool's estimated
    class shares and ``labelled`` how many labelled items each class has. Position j of the
    head goes to the class furthest behind its share of the labels so far plus j + 1, and
    within a class the strategy's order is kept; the rest of ``order`` follows unchanged.

    Uncertainty picks items on the boundaries between the classes a model confuses most,
    so a labelled set chosen by it alone over-represents those classes and starves the easy
    ones. A model trained on such labels later (the team's own, or the next version of
    this one) learns a skewed prior; balancing the head keeps the labels' class mix that of
    the pool while each class still contributes its most informative items."""
    n = len(order)
    depth = min(depth, n)
    k = len(shares)
    if depth == 0 or k < 2:
        return order
    # positions in ``order`` of each class's candidates, in the strategy's order
    by_class = [np.flatnonzero(predicted[order] == c) for c in range(k)]
    sizes = np.array([len(b) for b in by_class])
    taken = np.zeros(k, dtype=np.int64)
    total = float(labelled.sum())
    head = np.empty(depth, dtype=np.int64)
    for j in range(depth):
        deficit = shares * (total + j + 1) - (labelled + taken)
        deficit[taken >= sizes] = -np.inf
        behind = np.flatnonzero(deficit >= deficit.max() - 1e-9)
        # between classes equally far behind, the one whose next item the strategy ranks first
        c = int(behind[np.argmin([by_class[b][taken[b]] for b in behind])])
        head[j] = by_class[c][taken[c]]
        taken[c] += 1
    rest = np.ones(n, dtype=bool)
    rest[head] = False
    return np.concatenate([order[head], order[rest]]).astype(np.int64)


BALANCE_MIN_CLASSES = 3
"""The fewest classes a schema needs for its ranking head to be balanced."""


def balances(al: dict, strategy: str, multi_label: bool = False) -> bool:
    """Whether a ranking's head is dealt out by class (:func:`balanced`): the project's
    ``balance_classes``, on a single-label schema, for every strategy but random."""
    return bool(al["balance_classes"]) and strategy != "random" and not multi_label


def balanced(ranking: Ranking, classes: list[str], targets: list, proba: np.ndarray, depth: int) -> Ranking:
    """The ranking with its head keeping the pool's class mix (:func:`balance_classes`):
    the pool's shares are the model's mean probabilities over the candidates, the labelled
    counts those of every labelled item, evaluation and exploration items included.

    Only with three classes or more (``BALANCE_MIN_CLASSES``). The starving the balance
    corrects is a multi-class effect: uncertainty dwells on the boundary between the two
    classes a model confuses most, and the classes away from it go without labels. With two
    classes there is one boundary and both classes sit on it; balancing then only trades
    boundary items for easy items of the larger class, which costs the model labels (on the
    adult census pool, the seeded replay's median area fell from 0.813 to 0.789)."""
    if len(classes) < BALANCE_MIN_CLASSES:
        return ranking
    column = {c: j for j, c in enumerate(classes)}
    counts = np.zeros(len(classes))
    for target in targets:
        if target in column:
            counts[column[target]] += 1
    order = balance_classes(ranking.order, proba.argmax(axis=1), proba.mean(axis=0), counts, depth)
    return Ranking(order, ranking.scores, ranking.strategy)
