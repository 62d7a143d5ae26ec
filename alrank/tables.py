"""The terminal tables ``alrank metrics`` and ``alrank label-issues`` print."""

from __future__ import annotations

from collections.abc import Sequence


def table(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as columns, each as wide as its widest cell."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)


def agreement_lines(agreement: dict | None) -> list[str]:
    """The agreement section of ``alrank metrics``."""
    if not agreement or not agreement.get("overlapped_items"):
        return ["agreement: no item labelled by two annotators yet"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"agreement on {agreement['overlapped_items']} shared items: Fleiss' kappa "
        f"{f(agreement.get('fleiss_kappa'))}, Krippendorff's alpha {f(agreement.get('krippendorff_alpha'))}"
    ]
    rows = [("annotator", "labels", "shared", "agreement", "kappa", "reliability")]
    for name, r in agreement.get("per_annotator", {}).items():
        rows.append(
            (
                name,
                str(r["labels"]),
                str(r["overlapped_items"]),
                f(r.get("agreement")),
                f(r.get("cohen_kappa")),
                f(r.get("reliability")),
            )
        )
    return [*lines, table(rows)]


def _with_interval(value: float | None, interval: list | None) -> str:
    if value is None:
        return "-"
    if not interval:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _random_labels(m: int | None, interval: list | None) -> str:
    if m is None and not interval:
        return "-"
    lo, hi = interval or [None, None]
    shown = "-" if m is None else f"{m}"
    return f"{shown} [{'-' if lo is None else lo}, {'more' if hi is None else hi}]"


def curve_table(metrics: dict) -> str:
    """The learning curve as a terminal table: labels, evaluation size, accuracy and macro-F1
    with their 95% intervals, stop-set agreement and the labels random labelling would need,
    per model version; then the gain over random and the stopping signal."""
    rows: list[tuple[str, ...]] = [
        ("version", "labels", "eval", "accuracy [95%]", "macro-F1 [95%]", "kappa", "random would need")
    ]
    for point in metrics.get("curve", []):
        kappa = point.get("stop_kappa")
        rows.append(
            (
                str(point.get("version")),
                str(point.get("labels")),
                str(point.get("evaluation_size")),
                _with_interval(point.get("accuracy"), point.get("accuracy_interval")),
                _with_interval(point.get("macro_f1"), point.get("macro_f1_interval")),
                "-" if kappa is None else f"{kappa:.3f}",
                _random_labels(
                    point.get("equivalent_random_labels"), point.get("equivalent_random_interval")
                ),
            )
        )
    lines = [table(rows)]
    gain = metrics.get("gain")
    if gain:
        lines.append(f"gain over random: {gain.get('statement', '')}")
    if "should_stop" in metrics:
        verdict = "stop labelling" if metrics["should_stop"] else "keep labelling"
        lines.append(f"{verdict}: {metrics.get('reason', '')}")
    if "agreement" in metrics:
        lines += agreement_lines(metrics["agreement"])
    return "\n".join(lines)
