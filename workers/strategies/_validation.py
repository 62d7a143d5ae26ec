"""Input checks and shared helpers for every query strategy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from workers.exceptions import InvalidInput
from workers.features.columns import Columns

RandomState = int | np.random.Generator | None


class Selection(NamedTuple):
    """Chosen pool indices in pick order, with the score each had when it was picked."""

    indices: np.ndarray
    scores: np.ndarray


def empty_selection() -> Selection:
    return Selection(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


def rng_from(random_state: RandomState) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator or None (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int | np.integer) or batch_size < 0:
        raise InvalidInput(f"batch_size must be a non-negative integer, got {batch_size!r}")


def check_probabilities(probabilities: np.ndarray | None) -> np.ndarray:
    """Probabilities as a 2-d float array (rows: pool items, columns: classes)."""
    if probabilities is None:
        raise InvalidInput("this strategy needs the model's probabilities")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise InvalidInput(f"probabilities must be 2-d (items x classes), got shape {p.shape}")
    # NaN makes min/max NaN and every comparison false, so two passes check all three
    if p.size and not (p.min() >= 0 and p.max() <= 1):
        raise InvalidInput("probabilities must be finite and within [0, 1]")
    return p


def check_features(
    features: np.ndarray | sp.spmatrix | Columns | None, name: str = "features", rows_only: bool = False
):
    """Features as a 2-d dense float array or a CSR matrix; never densified. A pool's parts
    held apart (:class:`Columns`) are joined, unless the strategy reads only some of their
    rows (``rows_only``): then they are left as they are, to be joined row by row."""
    if features is None:
        raise InvalidInput(f"this strategy needs {name}")
    if isinstance(features, Columns):
        return features if rows_only else features.joined()
    if sp.issparse(features):
        return sp.csr_matrix(features)
    x = np.asarray(features)
    if x.ndim != 2:
        raise InvalidInput(f"{name} must be 2-d (items x features), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, largest first; ties broken by lower index."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


ROW_CHUNK = 32_768
"""Rows scored at a time: keeps per-row working arrays in cache on pools of any size."""


def others(n: int, taken) -> np.ndarray:
    """The rows of ``range(n)`` not in ``taken``, in order. A mask, not ``np.setdiff1d``:
    that sorts both arrays, about a second at a million rows."""
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(taken, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def by_row_chunks(fn, array: np.ndarray, axis: int = 0) -> np.ndarray:
    """``fn`` applied to consecutive row chunks of ``array`` (rows along ``axis``), joined."""
    n = array.shape[axis]
    if n <= ROW_CHUNK:
        return fn(array)
    index: list = [slice(None)] * array.ndim
    parts = []
    for start in range(0, n, ROW_CHUNK):
        index[axis] = slice(start, start + ROW_CHUNK)
        parts.append(fn(array[tuple(index)]))
    return np.concatenate(parts)
