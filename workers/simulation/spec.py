"""What a replay is asked to do (``Settings``) and what it measures (``Point``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers import defaults

MARKS = (0.90, 0.95, 0.98)
"""Shares of the full-pool model's accuracy whose label cost the summary reports."""


@dataclass
class Settings:
    strategies: list[str]
    seed_size: int = defaults.SIMULATION_SEED_SIZE
    batch_size: int = defaults.SIMULATION_BATCH_SIZE
    budget: int = defaults.SIMULATION_BUDGET
    repeats: int = defaults.SIMULATION_REPEATS
    test_fraction: float = defaults.SIMULATION_TEST_FRACTION
    seed: int = 0
    vectorizer: str = defaults.VECTORIZER_NAME
    classifier: str = defaults.CLASSIFIER_NAME
    params: dict = field(default_factory=dict)
    large_batch_size: int = 0
    """Past ``large_batch_from`` labels, batches of this size (0: keep ``batch_size``):
    cheaper rounds when a replay runs on towards the whole pool."""
    large_batch_from: int = 1000
    stop_accuracy: float | None = None
    """End a replay as soon as its test accuracy reaches this (for labels-to-a-mark runs)."""
    gain_every: int = defaults.SIMULATION_GAIN_EVERY
    """Served loop: estimate the gain over random, as the service reports it, at the first
    model past every multiple of this many labels, and check it against the ``random``
    strategy's measured curve (0: off)."""
    loop: str = "served"
    """``served``: the loop the service runs (its cold start, evaluation and exploration
    shares, retrain rule and ranking head; ``workers.simulation.served``), each repeat on a
    random 90% of the pool. ``seeded``: a random seed set of ``seed_size`` labels, then
    ``batch_size`` picks per round from the head of the service's ranking (the strategy's
    order, balanced by class unless ``params`` turn ``balance_classes`` off), as papers
    replay it."""


LOOPS = ("served", "seeded")


SERVED_POOL_SHARE = 0.9
"""Share of the pool each served repeat runs on (the service's loop is deterministic on a
given pool, so the repeats differ by their pools)."""


@dataclass
class Point:
    strategy: str
    repeat: int
    labels: int
    accuracy: float
    macro_f1: float
    gain: dict | None = None
    """The served loop's gain-over-random estimate at this point, where one was made."""
    trained_on: int | None = None
    """Labels the measured fit trained on (the served loop leaves the evaluation sample's out
    of it; the model served learns from them too)."""
    measured_accuracy: float | None = None
    """Test accuracy of that fit, where the served loop estimated gains: what a gain is for."""
