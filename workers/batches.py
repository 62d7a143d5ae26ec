"""How a batch is made up: its exploration and evaluation shares.

Of the items asked for, a share ``random_sample_percent`` is drawn at random for
exploration and a share ``eval_fraction`` at random for the evaluation sample; the rest
come from the ranking (``Store.next_batch`` fills each share). The count of a share in one
batch is the rise of ``floor(fraction x items asked for so far)`` over the batch: 5% of
batches of 10 is one item every other batch, exactly, and the same requests always get the
same counts (the served-loop replay, ``workers.simulation.served``, relies on that). The
store's script computes the same formula in Lua.
"""

from __future__ import annotations

import math

EPSILON = 1e-9
"""Keeps 0.05 x 20 at 1, not 0.999...: the same tolerance as the script's."""


def share(asked: int, size: int, fraction: float) -> int:
    """Items of a batch of ``size`` in a share ``fraction``, when ``asked`` items were asked
    for before it."""
    return math.floor((asked + size) * fraction + EPSILON) - math.floor(asked * fraction + EPSILON)
