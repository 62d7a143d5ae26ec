"""When more labels stop paying off: stabilising predictions (Bloodgood & Vijay-Shanker
2009). Successive models predict a fixed random stop set; once their agreement (Cohen's
kappa) stays at or above a threshold for a few versions in a row, further labels change
the model too little to be worth their cost."""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

from workers import defaults


def stop_set(ids: list[str], schema: str) -> list[str]:
    """A fixed random sample of the pool (by a hash of each id), stable as the pool grows."""
    return [ids[r] for r in stop_rows(ids, schema)]


def stop_rows(ids: list[str], schema: str) -> np.ndarray:
    """The rows of :func:`stop_set`'s items in ``ids``: the ``STOP_SET_SIZE`` smallest
    hashes, smallest first, ties in pool order. Selected, not sorted whole: at ten million
    items a sort keyed in Python took seconds of every retrain."""
    hashes = np.fromiter(
        (zlib.crc32(f"{schema}\x00{i}".encode()) for i in ids), dtype=np.uint32, count=len(ids)
    )
    k = min(defaults.STOP_SET_SIZE, len(ids))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(hashes, k - 1)[k - 1]
    rows = np.flatnonzero(hashes <= kth)
    return rows[np.argsort(hashes[rows], kind="stable")][:k]


def agreement(old: dict | None, new: dict) -> float | None:
    """Cohen's kappa between two models' predictions on the stop set items both saw."""
    found = agreement_with_support(old, new)
    return found[0] if found else None


def _kappa(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Cohen's kappa of each row pair of integer-coded predictions ``a``, ``b`` (rows are
    resamples), 1 where both are one constant label, as for identical predictions."""
    n = a.shape[1]
    observed = (a == b).mean(axis=1)
    pa = np.stack([(a == c).mean(axis=1) for c in range(k)], axis=1)
    pb = np.stack([(b == c).mean(axis=1) for c in range(k)], axis=1)
    expected = (pa * pb).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1 - expected)
    return np.where(expected >= 1 - 1e-12, np.where(observed >= 1, 1.0, 0.0), kappa) if n else kappa


def agreement_with_support(
    old: dict | None, new: dict, threshold: float = defaults.STOP_KAPPA, seed: int = 0
) -> tuple[float, list[float], float] | None:
    """Cohen's kappa between two models' stop-set predictions, its 95% bootstrap interval
    over the stop set, and the share of resamples in which it reaches ``threshold``."""
    if not old:
        return None
    common = [i for i in new if i in old]
    if not common:
        return None
    a = [json.dumps(old[i], sort_keys=True) for i in common]
    b = [json.dumps(new[i], sort_keys=True) for i in common]
    codes = {v: k for k, v in enumerate(sorted(set(a) | set(b)))}
    ca, cb = np.array([codes[v] for v in a]), np.array([codes[v] for v in b])
    point = 1.0 if a == b else float(cohen_kappa_score(a, b))
    point = point if np.isfinite(point) else 0.0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(common), size=(defaults.BOOTSTRAP_ROUNDS, len(common)))
    boot = np.nan_to_num(_kappa(ca[draws], cb[draws], len(codes)), nan=0.0)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return point, [float(lo), float(hi)], float((boot >= threshold).mean())


def learning_curve(models: list[dict]) -> list[dict]:
    """Labels against accuracy on the random evaluation sample, one point per version, with
    the 95% intervals and the gain over random of each."""
    curve = []
    for m in models:
        ev = m.get("evaluation") or {}
        gain = m.get("gain") or {}
        curve.append(
            {
                "version": m["version"],
                "labels": m["training_size"],
                "accuracy": ev.get("accuracy"),
                "accuracy_interval": ev.get("accuracy_interval"),
                "macro_f1": ev.get("macro_f1"),
                "macro_f1_interval": ev.get("macro_f1_interval"),
                "evaluation_size": ev.get("size", 0),
                "stop_kappa": m.get("stop_kappa"),
                "stop_kappa_interval": m.get("stop_kappa_interval"),
                "equivalent_random_labels": gain.get("equivalent_random_labels"),
                "equivalent_random_interval": gain.get("interval"),
                "created_at": m.get("created_at"),
                # versions trained before kinds were recorded were linear
                "classifier": m.get("classifier", "logistic_regression"),
                "train_seconds": m.get("train_seconds"),
            }
        )
    return curve


CRITERION = (
    "stabilising predictions (Bloodgood & Vijay-Shanker 2009): Cohen's kappa between each "
    "model's and its predecessor's predictions on a fixed random stop set of up to "
    f"{defaults.STOP_SET_SIZE} pool items at or above {{threshold}} for {{window}} versions in a row"
)


def stopping_signal(
    models: list[dict], threshold: float = defaults.STOP_KAPPA, window: int = defaults.STOP_WINDOW
) -> tuple[bool, str]:
    found = stopping(models, threshold, window)
    return found["should_stop"], found["reason"]


def stopping(
    models: list[dict], threshold: float = defaults.STOP_KAPPA, window: int = defaults.STOP_WINDOW
) -> dict:
    """Whether more labels have stopped paying off, how sure that is, and the figures behind
    it. ``certainty`` is the share of resamples of the stop set in which the last ``window``
    versions all reach the threshold (each version's share multiplied, as their resamples
    are drawn apart): near 1 the verdict would stand on another stop set, near 0.5 it
    could go either way."""
    recent = models[-window:]
    kappas = [m.get("stop_kappa") for m in recent]
    supports = [m.get("stop_kappa_support") for m in recent]
    out: dict[str, Any] = {
        "criterion": CRITERION.format(threshold=threshold, window=window),
        "threshold": threshold,
        "window": window,
        "kappas": [
            {
                "version": m["version"],
                "labels": m.get("training_size"),
                "kappa": m.get("stop_kappa"),
                "interval": m.get("stop_kappa_interval"),
            }
            for m in recent
        ],
        "certainty": None,
    }
    if len(models) < window + 1:
        return {
            **out,
            "should_stop": False,
            "reason": f"{len(models)} model version(s); the signal needs {window + 1}",
        }
    if all(s is not None for s in supports):
        out["certainty"] = float(np.prod([float(s) for s in supports if s is not None]))
    stop = all(k is not None and k >= threshold for k in kappas)
    shown = ", ".join("n/a" if k is None else f"{k:.3f}" for k in kappas)
    sure = f"; certainty {out['certainty']:.2f}" if out["certainty"] is not None else ""
    if stop:
        reason = (
            f"the last {window} models agree with their predecessors on the stop set "
            f"with kappa >= {threshold} ({shown}){sure}"
        )
    else:
        reason = (
            f"predictions still changing: kappa of the last {window} versions {shown} "
            f"(stable at >= {threshold})"
        )
        if out["certainty"] is not None:
            # for a keep-labelling verdict, how sure is the share of resamples that fail
            out["certainty"] = 1.0 - out["certainty"]
            reason += f"; certainty {out['certainty']:.2f}"
    return {**out, "should_stop": stop, "reason": reason}
