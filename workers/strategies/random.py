"""Uniform random sampling: the honest baseline."""

from __future__ import annotations

import numpy as np

from workers.strategies._validation import RandomState, Selection, check_batch_size, rng_from


def random_sampling(n_items: int, batch_size: int, random_state: RandomState = None) -> Selection:
    """``batch_size`` distinct pool indices drawn uniformly; every score is 0."""
    check_batch_size(batch_size)
    k = min(batch_size, n_items)
    idx = rng_from(random_state).permutation(n_items)[:k].astype(np.int64)
    return Selection(idx, np.zeros(k, dtype=np.float64))
