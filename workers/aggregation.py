"""Several annotators' labels for one item, as the one label a model trains on."""

from __future__ import annotations

from collections import Counter
from typing import Any


def aggregate(by_annotator: dict[str, Any], labels: list[str], multi_label: bool):
    """Majority vote over annotators; ties go to the label listed first in the schema.

    Multi-label: a label is on when more than half of the annotators chose it.
    """
    values = list(by_annotator.values())
    if multi_label:
        counts = Counter(v for value in values for v in value)
        return [lab for lab in labels if counts[lab] * 2 > len(values)]
    counts = Counter(values)
    return max(labels, key=lambda lab: (counts[lab], -labels.index(lab)))
