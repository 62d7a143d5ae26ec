"""When more labels stop paying off: stabilising predictions (Bloodgood & Vijay-Shanker
2009). Successive models predict a fixed random stop set; once their agreement (Cohen's
kappa) stays at or above a threshold for a few versions in a row, further labels change
the model too little to be worth their cost."""

from __future__ import annotations

import json
import zlib

import numpy as np
from sklearn.metrics import cohen_kappa_score

from workers import defaults


def stop_set(ids: list[str], schema: str) -> list[str]:
    """A fixed random sample of the pool (by a hash of each id), stable as the pool grows."""
    keyed = sorted(ids, key=lambda i: zlib.crc32(f"{schema}\x00{i}".encode()))
    return keyed[: defaults.STOP_SET_SIZE]


def agreement(old: dict | None, new: dict) -> float | None:
    """Cohen's kappa between two models' predictions on the stop set items both saw."""
    if not old:
        return None
    common = [i for i in new if i in old]
    if not common:
        return None
    a = [json.dumps(old[i], sort_keys=True) for i in common]
    b = [json.dumps(new[i], sort_keys=True) for i in common]
    if a == b:
        return 1.0
    kappa = cohen_kappa_score(a, b)
    return float(kappa) if np.isfinite(kappa) else 0.0


def learning_curve(models: list[dict]) -> list[dict]:
    """Labels against accuracy on the random evaluation sample, one point per version."""
    curve = []
    for m in models:
        ev = m.get("evaluation") or {}
        curve.append(
            {
                "version": m["version"],
                "labels": m["training_size"],
                "accuracy": ev.get("accuracy"),
                "macro_f1": ev.get("macro_f1"),
                "evaluation_size": ev.get("size", 0),
                "stop_kappa": m.get("stop_kappa"),
                "created_at": m.get("created_at"),
            }
        )
    return curve


def stopping_signal(
    models: list[dict], threshold: float = defaults.STOP_KAPPA, window: int = defaults.STOP_WINDOW
) -> tuple[bool, str]:
    kappas = [m.get("stop_kappa") for m in models[-window:]]
    if len(models) < window + 1:
        return False, f"{len(models)} model version(s); the signal needs {window + 1}"
    if all(k is not None and k >= threshold for k in kappas):
        return True, (
            f"the last {window} models agree with their predecessors on the stop set "
            f"with kappa >= {threshold} ({', '.join(f'{k:.3f}' for k in kappas)})"
        )
    shown = ", ".join("n/a" if k is None else f"{k:.3f}" for k in kappas)
    return (
        False,
        f"predictions still changing: kappa of the last {window} versions {shown} (stable at >= {threshold})",
    )
