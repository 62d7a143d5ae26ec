"""How a batch is made up: its exploration and evaluation shares.

A batch of ``size`` items holds ``size x random_sample_percent`` items drawn at random for
exploration and ``size x eval_fraction`` drawn at random for the evaluation sample; the rest
come from the ranking (``Store.next_batch`` fills each share).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Shares(NamedTuple):
    """Items of one batch drawn at random: for exploration, and for the evaluation sample."""

    explore: int
    evaluation: int


def share(size: int, fraction: float, rng: np.random.Generator) -> int:
    """``size x fraction`` items, rounded up or down at random so the expected share is exact
    even for small batches (5% of a batch of 10 is one item every other batch)."""
    exact = size * fraction
    base = math.floor(exact)
    return base + int(rng.random() < exact - base)


def shares(size: int, al: dict, rng: np.random.Generator) -> Shares:
    """The random shares of a batch of ``size`` under a project's settings ``al``."""
    return Shares(share(size, al["random_sample_percent"], rng), share(size, al["eval_fraction"], rng))
