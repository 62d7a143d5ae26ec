"""How far annotators agree, on the items several of them labelled.

Per schema:

- **Cohen's kappa** for every pair of annotators, on the items both labelled (Cohen 1960;
  scikit-learn's ``cohen_kappa_score``);
- **Fleiss' kappa** over everyone, on the items two or more labelled. Items may have
  different numbers of annotators: each item's agreement is the share of agreeing pairs
  among its annotators, and chance agreement comes from the pooled label shares (Fleiss
  1971, in the form that allows a varying number of raters per item);
- **Krippendorff's alpha** (nominal) over everyone (the ``krippendorff`` package), which
  allows missing labels by design;
- per annotator, the share of their labels that match the majority of the others on the
  same item, and Cohen's kappa between their labels and that majority.

Each figure carries the number of items it stands on. A multi-label schema's label is the
set of labels chosen, compared as a whole (two annotators agree when they chose the same
set).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import numpy as np

MIN_PAIR_ITEMS = 5
"""Items two annotators must share before their pair's kappa is reported."""


def _category(value: Any) -> str:
    """A label as one category: a multi-label answer is its sorted set."""
    if isinstance(value, (list, tuple)):
        return "\x1f".join(sorted(str(v) for v in value))
    return str(value)


def _kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa; 1.0 where both always gave one and the same category, None where
    chance agreement is already perfect and they differ (kappa undefined)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) == 1:
        return 1.0
    value = float(cohen_kappa_score(a, b))
    return None if np.isnan(value) else round(value, 4)


def fleiss_kappa(items: list[list[str]]) -> float | None:
    """Fleiss' kappa over items with two or more labels each (any number per item)."""
    rated = [votes for votes in items if len(votes) >= 2]
    if not rated:
        return None
    pooled: Counter[str] = Counter()
    agreement = []
    for votes in rated:
        counts = Counter(votes)
        n = len(votes)
        agreement.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
        pooled.update(votes)
    total = sum(pooled.values())
    chance = sum((c / total) ** 2 for c in pooled.values())
    observed = float(np.mean(agreement))
    if chance >= 1.0:
        return 1.0 if observed >= 1.0 else None
    return round((observed - chance) / (1.0 - chance), 4)


def krippendorff_alpha(labels_by_item: dict[str, dict[str, str]], annotators: list[str]) -> float | None:
    """Krippendorff's alpha, nominal, over the items two or more annotators labelled."""
    import krippendorff

    rated = [votes for votes in labels_by_item.values() if len(votes) >= 2]
    if not rated:
        return None
    codes = {c: k for k, c in enumerate(sorted({v for votes in rated for v in votes.values()}))}
    if len(codes) == 1:
        return 1.0
    table = np.full((len(annotators), len(rated)), np.nan)
    row = {a: k for k, a in enumerate(annotators)}
    for j, votes in enumerate(rated):
        for annotator, given in votes.items():
            table[row[annotator], j] = codes[given]
    alpha = float(krippendorff.alpha(reliability_data=table, level_of_measurement="nominal"))
    return None if np.isnan(alpha) else round(alpha, 4)


def agreement(labels_by_item: dict[str, dict[str, Any]]) -> dict:
    """The agreement figures of a schema's labels (``{item: {annotator: value}}``)."""
    votes = {
        item: {a: _category(v) for a, v in by.items()} for item, by in labels_by_item.items() if len(by) >= 2
    }
    annotators = sorted({a for by in labels_by_item.values() for a in by})
    shared: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for by in votes.values():
        for a, b in combinations(sorted(by), 2):
            shared[(a, b)][0].append(by[a])
            shared[(a, b)][1].append(by[b])
    pairs = [
        {"annotators": [a, b], "items": len(la), "cohen_kappa": _kappa(la, lb)}
        for (a, b), (la, lb) in sorted(shared.items())
        if len(la) >= MIN_PAIR_ITEMS
    ]
    return {
        "overlapped_items": len(votes),
        "annotators": len(annotators),
        "fleiss_kappa": fleiss_kappa([list(by.values()) for by in votes.values()]),
        "krippendorff_alpha": krippendorff_alpha(votes, annotators),
        "pairs": pairs,
        "per_annotator": per_annotator(labels_by_item, votes),
    }


def per_annotator(labels_by_item: dict[str, dict[str, Any]], votes: dict[str, dict[str, str]]) -> dict:
    """Per annotator: labels given, items shared with others, the share matching the
    others' majority there, and kappa against that majority."""
    given: Counter[str] = Counter(a for by in labels_by_item.values() for a in by)
    mine: dict[str, list[str]] = defaultdict(list)
    theirs: dict[str, list[str]] = defaultdict(list)
    for by in votes.values():
        for annotator, value in by.items():
            others = Counter(v for a, v in by.items() if a != annotator)
            top = max(others.values())
            leaders = sorted(v for v, c in others.items() if c == top)
            # a tie among the others counts as agreement when the annotator sides with one
            majority = value if value in leaders else leaders[0]
            mine[annotator].append(value)
            theirs[annotator].append(majority)
    out = {}
    for annotator in sorted(given):
        a, b = mine.get(annotator, []), theirs.get(annotator, [])
        out[annotator] = {
            "labels": given[annotator],
            "overlapped_items": len(a),
            "agreement": round(float(np.mean([x == y for x, y in zip(a, b, strict=True)])), 4) if a else None,
            "cohen_kappa": _kappa(a, b) if len(a) >= MIN_PAIR_ITEMS else None,
        }
    return out
