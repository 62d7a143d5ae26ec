"""Several annotators' labels for one item, as the one label a model trains on.

The resolution strategies are Potato's (``active_learning.resolution_strategy``), and
Dawid-Skene:

- ``majority_vote`` (the default): the label most annotators gave. A tie goes to the label
  given most recently (so a second opinion asked for in review decides between two), or,
  without times, to the label listed first in the schema. Multi-label: a label is on when
  more than half chose it; at exactly half, as the most recent annotator chose.
- ``consensus``: the label every annotator gave; an item they disagree on trains nothing
  (it still leaves the pool once it has enough annotators).
- ``random``: one annotator's label, drawn per item (reproducibly: the draw is seeded by
  the item and the retrain's inputs).
- ``weighted_average``: a vote where each annotator weighs as much as they agree with the
  majority on the other items they labelled (Laplace-smoothed), so a careless annotator
  counts for less. Potato accepts the name and falls back to a majority vote; this is the
  weighted vote its name promises.
- ``dawid_skene``: each annotator's confusion matrix and the classes' shares estimated
  together by expectation-maximisation over every item (Dawid & Skene 1979), then each
  item's most probable class given everyone's labels and their matrices. An annotator who
  answers at random gets a flat matrix and their labels count for little; one who is
  right where the others are gets a diagonal one. Multi-label: each label on or off, the
  same way.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

RESOLUTION_STRATEGIES = ("majority_vote", "consensus", "random", "weighted_average", "dawid_skene")

DS_ITERATIONS = 100
"""Most rounds of expectation-maximisation Dawid-Skene runs."""

DS_TOLERANCE = 1e-6
"""Dawid-Skene stops once no item's class probabilities move by more than this."""

DS_PRIOR_DIAGONAL = 2.0
"""Pseudo-counts on each confusion matrix's diagonal (and 1/classes off it): with only a
few shared items an annotator is taken to be better than chance, not perfect or useless."""


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
    times: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Each labelled item's training label under ``strategy``; None where it gives none.
    ``times`` (per item, when each annotator's label was set) breaks ties in favour of the
    most recent label."""
    times = times or {}
    if strategy == "consensus":
        return {item: _consensus(votes, multi_label) for item, votes in labels_by_item.items()}
    if strategy == "random":
        return {item: _one_at_random(item, votes, seed) for item, votes in labels_by_item.items()}
    if strategy == "dawid_skene":
        return dawid_skene(labels_by_item, labels, multi_label, times).labels
    weights = annotator_weights(labels_by_item, labels, multi_label) if strategy == "weighted_average" else {}
    return {
        item: _weighted_vote(votes, labels, multi_label, weights, times.get(item))
        for item, votes in labels_by_item.items()
    }


@dataclass
class DawidSkene:
    """What Dawid-Skene estimated: each item's label, each annotator's reliability (their
    expected accuracy: the class shares times their confusion matrix's diagonal; for
    multi-label, the mean over labels) and the items each estimate stands on."""

    labels: dict[str, Any]
    reliability: dict[str, float]
    shared_items: dict[str, int]


def dawid_skene(
    labels_by_item: dict[str, dict[str, Any]],
    labels: list[str],
    multi_label: bool,
    times: dict[str, dict[str, float]] | None = None,
) -> DawidSkene:
    """Dawid & Skene (1979) over a schema's labels; see the module's docstring."""
    items = list(labels_by_item)
    shared = Counter(a for votes in labels_by_item.values() if len(votes) >= 2 for a in votes)
    times = times or {}
    if not multi_label:
        codes = {lab: k for k, lab in enumerate(labels)}
        answers = {i: {a: codes[v] for a, v in labels_by_item[i].items() if v in codes} for i in items}
        posterior, reliability = _em(items, answers, len(labels))
        return DawidSkene(
            {i: _most_probable(posterior[k], answers[i], labels, times.get(i)) for k, i in enumerate(items)},
            reliability,
            dict(shared),
        )
    chosen: dict[str, list[str]] = {i: [] for i in items}
    per_label: dict[str, list[float]] = defaultdict(list)
    for lab in labels:
        answers = {i: {a: int(lab in v) for a, v in labels_by_item[i].items()} for i in items}
        posterior, reliability = _em(items, answers, 2)
        for k, i in enumerate(items):
            if _most_probable(posterior[k], answers[i], [0, 1], times.get(i)) == 1:
                chosen[i].append(lab)
        for a, r in reliability.items():
            per_label[a].append(r)
    return DawidSkene(chosen, {a: round(float(np.mean(r)), 4) for a, r in per_label.items()}, dict(shared))


def _em(
    items: list[str], answers: dict[str, dict[str, int]], classes: int
) -> tuple[np.ndarray, dict[str, float]]:
    """(items x classes) class probabilities and each annotator's reliability, from each
    item's answers as class numbers."""
    annotators = sorted({a for votes in answers.values() for a in votes})
    if not items or not annotators:
        return np.full((len(items), classes), 1.0 / classes), {}
    col = {a: k for k, a in enumerate(annotators)}
    triples = np.array(  # (item, annotator, answer)
        [(k, col[a], v) for k, i in enumerate(items) for a, v in answers[i].items()], dtype=np.int64
    ).reshape(-1, 3)
    n = len(items)
    posterior = np.full((n, classes), 1e-9)
    np.add.at(posterior, (triples[:, 0], triples[:, 2]), 1.0)  # start from the vote shares
    posterior /= posterior.sum(axis=1, keepdims=True)
    pseudo = np.full((classes, classes), 1.0 / classes) + np.eye(classes) * (
        DS_PRIOR_DIAGONAL - 1.0 / classes
    )
    for _ in range(DS_ITERATIONS):
        shares = (posterior.sum(axis=0) + 1.0) / (n + classes)
        confusion = np.repeat(pseudo[None], len(annotators), axis=0)
        # confusion[annotator, true, given] gains P(the item's class is true) per label given
        np.add.at(confusion.transpose(0, 2, 1), (triples[:, 1], triples[:, 2]), posterior[triples[:, 0]])
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_post = np.tile(np.log(shares), (n, 1))
        np.add.at(log_post, triples[:, 0], np.log(confusion[triples[:, 1], :, triples[:, 2]]))
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        moved = float(np.abs(updated - posterior).max())
        posterior = updated
        if moved < DS_TOLERANCE:
            break
    reliability = {a: round(float(shares @ np.diag(confusion[col[a]])), 4) for a in annotators}
    return posterior, reliability


def _most_probable(probs: np.ndarray, answers: dict[str, int], classes: list, times: dict | None) -> Any:
    """The most probable class; a tie goes to the class answered most recently among the
    tied ones, then to the first listed."""
    top = set(np.flatnonzero(probs >= probs.max() - 1e-9).tolist())
    if len(top) == 1:
        return classes[top.pop()]
    times = times or {}
    when = {k: max((times.get(a, 0.0) for a, v in answers.items() if v == k), default=-1.0) for k in top}
    return classes[max(sorted(top), key=lambda k: (when[k], -k))]


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


def _weighted_vote(
    votes: dict[str, Any],
    labels: list[str],
    multi_label: bool,
    weights: dict[str, float],
    times: dict[str, float] | None = None,
):
    times = times or {}
    latest = max(votes, key=lambda a: (times.get(a, 0.0), a)) if times else None
    if multi_label:
        total = sum(weights.get(a, 1.0) for a in votes)
        on: dict[str, float] = defaultdict(float)
        for annotator, value in votes.items():
            for v in value:
                on[v] += weights.get(annotator, 1.0)
        return [
            lab
            for lab in labels
            if on[lab] * 2 > total or (on[lab] * 2 == total and latest is not None and lab in votes[latest])
        ]
    counts: dict[str, float] = defaultdict(float)
    when: dict[str, float] = defaultdict(float)
    for annotator, value in votes.items():
        counts[value] += weights.get(annotator, 1.0)
        when[value] = max(when[value], times.get(annotator, 0.0))
    return max(labels, key=lambda lab: (counts[lab], when[lab], -labels.index(lab)))


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
