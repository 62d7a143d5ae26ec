"""Client vectors on one scale: standardised column by column over the pool, then set
beside the text features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from workers.features.columns import columns, join_columns, rows_of


@dataclass
class VectorScale:
    """Each client-vector column centred on its pool mean and divided by its standard
    deviation (a constant column by 1), as scikit-learn's ``StandardScaler`` does.

    Numeric pools arrive in their own units (an age in years beside an income in dollars,
    a slope in degrees beside a distance in metres): unscaled, the widest column decides
    both the model's regularisation and the distances diverse strategies cluster by.
    Fitted on the whole pool (no labels are used), kept with each model for predictions."""

    mean: np.ndarray
    scale: np.ndarray

    CHUNK = 65_536

    @classmethod
    def fit(cls, vectors: np.ndarray) -> VectorScale:
        n, d = vectors.shape
        total = np.zeros(d)
        squares = np.zeros(d)
        for start in range(0, n, cls.CHUNK):  # in chunks: no float64 copy of the whole pool
            block = np.asarray(vectors[start : start + cls.CHUNK], dtype=np.float64)
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0.0))
        return cls(mean, np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0))

    @classmethod
    def standardise(cls, vectors: np.ndarray) -> tuple[VectorScale, np.ndarray]:
        """The pool's scaling and its rows scaled by it."""
        scale = cls.fit(vectors)
        return scale, scale.apply(vectors)

    def to_dict(self) -> dict[str, list[float]]:
        """The scaling as JSON can carry it, exactly (``workers.shards``)."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> VectorScale:
        return cls(np.array(d["mean"], dtype=np.float64), np.array(d["scale"], dtype=np.float64))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Scaled rows, float32, in a new array (the given one is left as it is)."""
        out = np.empty(vectors.shape, dtype=np.float32)
        for start in range(0, len(vectors), self.CHUNK):
            block = np.asarray(vectors[start : start + self.CHUNK], dtype=np.float64)
            out[start : start + self.CHUNK] = (block - self.mean) / self.scale
        return out


def with_vectors(text, vectors: np.ndarray | None, n: int):
    """Text features and client vectors side by side: CSR when TF-IDF is involved."""
    if vectors is not None and text is not None:
        if sp.issparse(text):
            return join_columns([text, vectors])
        return np.hstack([text, vectors]).astype(np.float32)
    if text is not None:
        return text
    if vectors is not None:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return np.zeros((n, 1), dtype=np.float32)


def pool_matrix(parts: list, vectors: np.ndarray | None, n: int, rows: np.ndarray | None = None):
    """The pool's matrix from its parts' rows and its scaled client vectors: one part as it
    is, several side by side as :class:`Columns` (joined only for the rows a stage asks
    for), and an all-zero column when the pool has neither text nor vectors. With ``rows``,
    only those rows of the parts (``vectors`` holds only theirs already)."""
    if not parts and vectors is None:
        return with_vectors(None, None, n)
    if rows is not None:
        parts = [rows_of(p, rows) for p in parts]
    return columns([*parts, vectors])
