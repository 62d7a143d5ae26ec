"""How far a replay is, and the time left, for a terminal or a job's progress."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

import numpy as np

from workers.features import Progress as FeatureProgress

Progress = Callable[[float, float, str], None]
"""progress(fraction_done, eta_seconds, stage): stage ``features`` while the features are
computed (when a part reports, as MiniLM does), then ``simulating``, after every round."""


def terminal_progress(stream=sys.stderr) -> Progress:
    """A progress bar per stage, redrawn in place; a new line once a stage is done."""

    finished: set[str] = set()
    current = [""]

    def draw(fraction: float, eta: float, stage: str) -> None:
        if stage in finished:
            return
        if current[0] and current[0] != stage and current[0] not in finished:
            stream.write("\n")  # the stage before ended without reporting its end
        current[0] = stage
        bar = "#" * int(fraction * 30)
        stream.write(f"\r{stage:<10} [{bar:<30}] {fraction:6.1%}  eta {eta:5.0f} s ")
        if fraction >= 1.0:
            stream.write("\n")
            finished.add(stage)
        stream.flush()

    return draw


def timed(progress: Progress, stage: str) -> FeatureProgress:
    """``progress`` for one stage, from a fraction: the time left is extrapolated from the
    time since this call."""
    started = time.monotonic()

    def report(fraction: float) -> None:
        elapsed = time.monotonic() - started
        progress(fraction, elapsed / fraction - elapsed if fraction > 0 else math.nan, stage)

    return report


class RoundClock:
    """How far a replay is and the time left, from what its rounds really cost.

    A round at n labels trains on n rows, so later rounds take longer than early ones: a
    count of rounds or labels done says the run is further on than it is, and its time left
    keeps rising. Here each round's seconds are fitted as a + b x n over the rounds so far
    (least squares, b >= 0), and the time left is that line summed over the rounds still to
    come: this run's up to the budget, and every later run's whole schedule."""

    def __init__(self, progress: Progress, runs: int, seed_size: int, batch_size: int, budget: int) -> None:
        self.progress, self.runs = progress, runs
        self.schedule = np.unique(
            np.r_[np.arange(min(seed_size, budget), budget, max(batch_size, 1)), budget]
        )
        self.started = self.last = time.monotonic()
        self.seen: list[tuple[int, float]] = []

    def round_done(self, run: int, labels: int) -> None:
        now = time.monotonic()
        self.seen.append((labels, now - self.last))
        self.last = now
        left = np.r_[
            self.schedule[self.schedule > labels], np.tile(self.schedule, max(self.runs - run - 1, 0))
        ]
        eta = float(self.seconds(left).sum())
        elapsed = now - self.started
        fraction = elapsed / (elapsed + eta) if elapsed + eta > 0 else 1.0
        self.progress(min(fraction, 1.0), eta, "simulating")

    def seconds(self, labels: np.ndarray) -> np.ndarray:
        """The seconds rounds at ``labels`` labels are expected to take."""
        n = np.array([k for k, _ in self.seen], dtype=np.float64)
        t = np.array([s for _, s in self.seen], dtype=np.float64)
        slope = 0.0
        if len(np.unique(n)) >= 2:
            slope = max(float(np.polyfit(n, t, 1)[0]), 0.0)
        intercept = float(np.mean(t - slope * n))
        return np.maximum(intercept + slope * labels, 0.0)
