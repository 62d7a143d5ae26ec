"""What a replay's curves come to: the areas, the labels to each share of the whole
pool's accuracy, the check of the live gain over random, and the plot."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from workers.simulation.spec import MARKS, Point, Settings


def normalised_auc(labels, accuracy) -> float:
    """Area under an accuracy curve over its span of labels: its mean height, between 0 and
    1 (the one value, for a curve of one point)."""
    labels = np.asarray(labels, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    span = labels[-1] - labels[0]
    return float(np.trapezoid(accuracy, labels) / span) if span > 0 else float(accuracy[0])


def summarise(points: list[Point], full_accuracy: float, settings: Settings) -> dict:
    out: dict = {"full_pool_accuracy": full_accuracy, "settings": asdict(settings), "strategies": {}}
    for strategy in settings.strategies:
        mine = [p for p in points if p.strategy == strategy]
        grid = sorted({p.labels for p in mine})
        if not grid:  # no model within the budget (one class only, say)
            out["strategies"][strategy] = {"auc": None, "final_accuracy": None, "final_macro_f1": None}
            out["strategies"][strategy] |= {f"labels_to_{round(m * 100)}": None for m in MARKS}
            continue
        mean = np.array([np.mean([p.accuracy for p in mine if p.labels == g]) for g in grid])
        f1 = np.array([np.mean([p.macro_f1 for p in mine if p.labels == g]) for g in grid])
        entry: dict[str, float | int | None] = {
            "auc": normalised_auc(grid, mean),
            "final_accuracy": float(mean[-1]),
            "final_macro_f1": float(f1[-1]),
        }
        for mark in MARKS:
            reached = [g for g, a in zip(grid, mean, strict=True) if a >= mark * full_accuracy]
            entry[f"labels_to_{round(mark * 100)}"] = int(reached[0]) if reached else None
        out["strategies"][strategy] = entry
    return out


def true_random_labels(points: list[Point], accuracy: float) -> float | None:
    """Training labels at which the ``random`` strategy's mean test curve first reaches
    ``accuracy`` (linear between its points); None where it never does within the budget.
    The gain is estimated for the fit without the evaluation sample, on the labels it trained
    on, so the truth is too: the served loop's random strategy's measured fits."""
    mine = [p for p in points if p.strategy == "random"]
    steps = sorted({p.labels for p in mine})
    mean = [float(np.mean([measured(p) for p in mine if p.labels == g])) for g in steps]
    grid = [
        float(np.mean([p.labels if p.trained_on is None else p.trained_on for p in mine if p.labels == g]))
        for g in steps
    ]
    for k, (g, a) in enumerate(zip(grid, mean, strict=True)):
        if a >= accuracy:
            if k == 0:
                return float(g)
            g0, a0 = grid[k - 1], mean[k - 1]
            return float(g0 + (g - g0) * (accuracy - a0) / (a - a0))
    return None


def measured(point: Point) -> float:
    """Test accuracy of the point's fit without the evaluation sample (the served model's
    where the replay did not measure it apart)."""
    return point.accuracy if point.measured_accuracy is None else point.measured_accuracy


def gain_validation(points: list[Point]) -> tuple[dict, list[dict]]:
    """How often the gain's 95% interval covers the truth: the labels the ``random``
    strategy's measured mean curve needs to reach each estimated model's test accuracy.
    Where random never reaches it within the budget, the truth is only known to lie beyond
    the budget, and the interval covers it when its top does too."""
    random_points = [p for p in points if p.strategy == "random"]
    budget = max((p.trained_on or p.labels for p in random_points), default=0)
    rows = []
    for p in points:
        if not p.gain or p.gain.get("status") != "estimated":
            continue
        truth = true_random_labels(points, measured(p))
        lo, hi = p.gain["interval"]
        if truth is None:
            covered = hi is None or hi >= budget
        else:
            covered = (lo is None or lo <= truth) and (hi is None or truth <= hi)
        rows.append(
            {
                "strategy": p.strategy,
                "repeat": p.repeat,
                "labels": p.labels,
                "trained_on": p.gain["labels"],
                "test_accuracy": measured(p),
                "estimate": p.gain["equivalent_random_labels"],
                "low": lo,
                "high": hi,
                "truth": truth,
                "covered": bool(covered),
                "verdict": p.gain["verdict"],
            }
        )
    out: dict = {}
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        bounded = [r["high"] / max(r["low"], 1) for r in mine if r["high"] is not None and r["low"]]
        out[strategy] = {
            "estimates": len(mine),
            "covered": sum(r["covered"] for r in mine),
            "coverage": sum(r["covered"] for r in mine) / len(mine),
            "truth_beyond_budget": sum(r["truth"] is None for r in mine),
            "bounded": len(bounded),
            "median_high_over_low": float(np.median(bounded)) if bounded else None,
            "verdicts": {
                v: sum(r["verdict"] == v for r in mine) for v in ("saving", "undecided", "not_helping")
            },
            "wrong_verdicts": sum(_wrong(r) for r in mine),
        }
    return out, rows


def _wrong(row: dict) -> bool:
    """A verdict the truth contradicts: "saving" where random labelling reached the model's
    accuracy with no more labels than it trained on, "not helping" where it needed more."""
    beyond = row["truth"] is None or row["truth"] > row["trained_on"]
    return (row["verdict"] == "saving" and not beyond) or (row["verdict"] == "not_helping" and beyond)


def plot(points: list[Point], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for strategy in summary["strategies"]:
        mine = [p for p in points if p.strategy == strategy]
        grid = sorted({p.labels for p in mine})
        acc = [[p.accuracy for p in mine if p.labels == g] for g in grid]
        mean = np.array([np.mean(a) for a in acc])
        lo = np.array([np.min(a) for a in acc])
        hi = np.array([np.max(a) for a in acc])
        auc = summary["strategies"][strategy]["auc"]
        if auc is None:
            continue
        ax.plot(grid, mean, label=f"{strategy} (AUC {auc:.3f})")
        ax.fill_between(grid, lo, hi, alpha=0.2)
    full = summary["full_pool_accuracy"]
    ax.axhline(full, color="grey", linestyle="--", linewidth=1, label=f"whole pool labelled ({full:.3f})")
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title("Learning curves (band: min to max over repeats)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(points: list[Point], full_accuracy: float, settings: Settings, out: Path) -> dict:
    """Write a replay's curves.csv, gain.csv (where the live gain was estimated),
    summary.json and curves.png to ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["strategy", "repeat", "labels", "accuracy", "macro_f1"])
        for p in points:
            writer.writerow([p.strategy, p.repeat, p.labels, f"{p.accuracy:.6f}", f"{p.macro_f1:.6f}"])
    summary = summarise(points, full_accuracy, settings)
    summary["curves"] = [asdict(p) for p in points]
    if any(p.gain for p in points):
        summary["gain_validation"], gains = gain_validation(points)
        with open(out / "gain.csv", "w", newline="", encoding="utf-8") as f:
            table = csv.DictWriter(f, fieldnames=list(gains[0]) if gains else ["strategy"])
            table.writeheader()
            table.writerows(gains)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot(points, summary, out / "curves.png")
    return summary
