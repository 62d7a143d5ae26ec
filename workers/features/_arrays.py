"""Arrays in and out of ``.npz`` bytes: strings as JSON bytes, a fitted TF-IDF's state."""

from __future__ import annotations

import io
import json

import numpy as np


def state_arrays(state: dict, suffix: str = "") -> dict[str, np.ndarray]:
    """A fitted TF-IDF part's state as arrays (none for an embedding's empty state)."""
    if not state:
        return {}
    return {
        f"terms{suffix}": json_array(state["terms"]),
        f"idf{suffix}": np.asarray(state["idf"], dtype=np.float64),
        f"params{suffix}": json_array([json.dumps(state.get("params") or {}, sort_keys=True)]),
    }


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def json_array(values: list[str]) -> np.ndarray:
    return np.frombuffer(json.dumps(values).encode(), dtype=np.uint8)


def json_list(arr: np.ndarray) -> list[str]:
    return json.loads(arr.tobytes().decode())
