"""When more labels stop paying off: stabilising predictions (Bloodgood & Vijay-Shanker
2009). Successive models predict a fixed random stop set; once their agreement (Cohen's
kappa) stays at or above a threshold for a few versions in a row, further labels change
the model too little to be worth their cost."""

from __future__ import annotations

from workers import defaults


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
