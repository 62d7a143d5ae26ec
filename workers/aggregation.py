"""Several annotators' labels for one item, as the one label a model trains on.

The resolution strategies are Potato's (``active_learning.resolution_strategy``):

- ``majority_vote`` (the default): the label most annotators gave; ties go to the label
  listed first in the schema. Multi-label: a label is on when more than half chose it.
- ``consensus``: the label every annotator gave; an item they disagree on trains nothing
  (it still leaves the pool once it has enough annotators).
- ``random``: one annotator's label, drawn per item (reproducibly: the draw is seeded by
  the item and the retrain's inputs).
- ``weighted_average``: a vote where each annotator weighs as much as they agree with the
  majority on the other items they labelled (Laplace-smoothed), so a careless annotator
  counts for less. Potato accepts the name and falls back to a majority vote; this is the
  weighted vote its name promises.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

RESOLUTION_STRATEGIES = ("majority_vote", "consensus", "random", "weighted_average")


def aggregate(by_annotator: dict[str, Any], labels: list[str], multi_label: bool):
    """Majority vote over annotators; ties go to the label listed first in the schema.

    Multi-label: a label is on when more than half of the annotators chose it.
    """
    return _weighted_vote(by_annotator, labels, multi_label, {})


def resolve(
    labels_by_item: dict[str, dict[str, Any]],
    labels: list[str],
    multi_label: bool,
    strategy: str = "majority_vote",
    seed: int = 0,
) -> dict[str, Any]:
    """Each labelled item's training label under ``strategy``; None where it gives none."""
    if strategy == "consensus":
        return {item: _consensus(votes, multi_label) for item, votes in labels_by_item.items()}
    if strategy == "random":
        return {item: _one_at_random(item, votes, seed) for item, votes in labels_by_item.items()}
    weights = annotator_weights(labels_by_item, labels, multi_label) if strategy == "weighted_average" else {}
    return {
        item: _weighted_vote(votes, labels, multi_label, weights) for item, votes in labels_by_item.items()
    }


def annotator_weights(
    labels_by_item: dict[str, dict[str, Any]], labels: list[str], multi_label: bool
) -> dict[str, float]:
    """Per annotator, the share of their labels that match the majority of the others on
    the same item, smoothed towards 1/2 (one agreement and one disagreement added)."""
    agree: dict[str, float] = defaultdict(float)
    seen: dict[str, int] = defaultdict(int)
    for votes in labels_by_item.values():
        if len(votes) < 2:
            continue
        for annotator, value in votes.items():
            others = {a: v for a, v in votes.items() if a != annotator}
            majority = _weighted_vote(others, labels, multi_label, {})
            seen[annotator] += 1
            agree[annotator] += float(_same(value, majority, multi_label))
    return {a: (agree[a] + 1.0) / (seen[a] + 2.0) for a in seen}


def _same(a: Any, b: Any, multi_label: bool) -> bool:
    return set(a) == set(b) if multi_label else a == b


def _weighted_vote(votes: dict[str, Any], labels: list[str], multi_label: bool, weights: dict[str, float]):
    if multi_label:
        total = sum(weights.get(a, 1.0) for a in votes)
        on: dict[str, float] = defaultdict(float)
        for annotator, value in votes.items():
            for v in value:
                on[v] += weights.get(annotator, 1.0)
        return [lab for lab in labels if on[lab] * 2 > total]
    counts: dict[str, float] = defaultdict(float)
    for annotator, value in votes.items():
        counts[value] += weights.get(annotator, 1.0)
    return max(labels, key=lambda lab: (counts[lab], -labels.index(lab)))


def _consensus(votes: dict[str, Any], multi_label: bool):
    values = list(votes.values())
    first = values[0]
    if all(_same(v, first, multi_label) for v in values[1:]):
        return sorted(first) if multi_label else first
    return None


def _one_at_random(item: str, votes: dict[str, Any], seed: int):
    annotators = sorted(votes)
    digest = hashlib.sha256(f"{seed}\0{item}".encode()).digest()
    return votes[annotators[int.from_bytes(digest[:8], "big") % len(annotators)]]
