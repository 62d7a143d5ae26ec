"""BALD: Bayesian Active Learning by Disagreement (Houlsby et al. 2011, arXiv:1112.5745;
Gal et al. 2017).

The score is the mutual information between an item's label and the model,
H[mean_m p_m] - mean_m H[p_m], estimated over an ensemble of members (here bootstrap
replicates of the model). It is zero when every member predicts the same distribution,
and largest when members are each confident but disagree.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from workers.exceptions import InvalidInput
from workers.strategies._validation import by_row_chunks


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with 0 log 0 = 0."""
    return entr(p).sum(axis=axis)


def bald_scores(member_probabilities: np.ndarray) -> np.ndarray:
    """Mutual information per item from an array (members, items, classes), in nats."""
    pm = np.asarray(member_probabilities)
    if not np.issubdtype(pm.dtype, np.floating):
        pm = pm.astype(np.float64)
    if pm.ndim != 3:
        raise InvalidInput(
            f"BALD needs member probabilities shaped (members, items, classes), got {pm.shape}"
        )
    if pm.shape[1] == 0:
        return np.zeros(0)

    def mutual_information(chunk: np.ndarray) -> np.ndarray:
        mi = _entropy(chunk.mean(axis=0)) - _entropy(chunk).mean(axis=0)
        return np.maximum(mi, 0.0)  # rounding can leave a tiny negative

    return by_row_chunks(mutual_information, pm, axis=1)
