"""Uncertainty sampling (Lewis & Gale 1994; margin: Scheffer et al. 2001).

The score is larger for items the model is less sure about; the batch is the top scores.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from workers.exceptions import InvalidInput
from workers.strategies._validation import (
    by_row_chunks,
    check_probabilities,
)

MEASURES = ("least_confidence", "margin", "entropy")


def least_confidence(p: np.ndarray) -> np.ndarray:
    """1 - max_c p(c|x)."""
    return 1.0 - p.max(axis=1)


def margin(p: np.ndarray) -> np.ndarray:
    """1 - (p_top1 - p_top2): the two most likely classes are close."""
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(p: np.ndarray) -> np.ndarray:
    """-sum_c p(c|x) log p(c|x), natural log; 0 log 0 = 0."""
    return entr(p).sum(axis=1)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Element-wise entropy of independent Bernoulli probabilities."""
    return entr(p) + entr(1.0 - p)


def uncertainty_scores(
    probabilities: np.ndarray, measure: str = "margin", multi_label: bool = False
) -> np.ndarray:
    """Uncertainty of each row.

    Multi-label rows hold one independent probability per label: ``entropy`` is the mean
    binary entropy over labels; ``margin`` and ``least_confidence`` score the label closest
    to 0.5 (1 - 2|p - 0.5|, largest over labels).
    """
    p = check_probabilities(probabilities)
    if measure not in MEASURES:
        raise InvalidInput(f"unknown uncertainty measure {measure!r}; use one of {MEASURES}")
    if multi_label:
        if measure == "entropy":
            if not p.shape[1]:
                return np.zeros(p.shape[0])
            return by_row_chunks(lambda c: binary_entropy(c).mean(axis=1), p)
        return by_row_chunks(lambda c: (1.0 - 2.0 * np.abs(c - 0.5)).max(axis=1, initial=0.0), p)
    fn = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}[measure]
    return by_row_chunks(fn, p)
