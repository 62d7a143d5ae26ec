"""Features for items outside the pool, in the columns a model was trained on."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from workers.features._arrays import json_array, json_list, npz, state_arrays
from workers.features.kinds import EMBEDDINGS, side_by_side, transform_tfidf
from workers.features.scaling import VectorScale, with_vectors


@dataclass
class Featurizer:
    """Feature rows for items outside the pool, in the columns a model was trained on: the
    TF-IDF parts' fitted vocabularies and weights, the embeddings by name, then the
    client's vectors (``vector_dim`` wide, zeros where an item has none)."""

    parts: list[tuple[str, dict]]
    vector_dim: int | None = None
    vector_scale: VectorScale | None = None
    """The pool's scaling of the vectors; None for models trained on vectors as given."""

    def transform(self, texts: list[str], vectors: list[list[float] | None] | None = None):
        n = len(texts)
        rows = []
        for part, state in self.parts:
            if part in EMBEDDINGS:
                rows.append(EMBEDDINGS[part](texts, None))
            else:
                rows.append(transform_tfidf(part, state, texts))
        dense = None
        if self.vector_dim:
            dense = np.zeros((n, self.vector_dim), dtype=np.float32)
            for i, v in enumerate(vectors or []):
                if v is not None:
                    dense[i] = v
            if self.vector_scale is not None:
                dense = self.vector_scale.apply(dense)
        return with_vectors(side_by_side(rows), dense, n)

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "parts": json_array([part for part, _ in self.parts]),
            "vector_dim": np.array([self.vector_dim or 0], dtype=np.int64),
        }
        if self.vector_scale is not None:
            arrays |= {"vector_mean": self.vector_scale.mean, "vector_scale": self.vector_scale.scale}
        for k, (_, state) in enumerate(self.parts):
            arrays |= state_arrays(state, str(k))
        return npz(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Featurizer:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            parts: list[tuple[str, dict]] = []
            for k, part in enumerate(json_list(z["parts"])):
                state: dict = {}
                if f"terms{k}" in z:
                    state = {
                        "terms": json_list(z[f"terms{k}"]),
                        "idf": z[f"idf{k}"],
                        "params": json.loads(json_list(z[f"params{k}"])[0]),
                    }
                parts.append((part, state))
            scale = None
            if "vector_mean" in z:
                scale = VectorScale(z["vector_mean"], z["vector_scale"])
            return cls(parts, int(z["vector_dim"][0]) or None, scale)
