"""A batch's random shares (workers/batches.py)."""

from __future__ import annotations

import numpy as np

from workers.batches import share, shares


def test_a_share_is_exact_on_average_and_never_off_by_more_than_one():
    rng = np.random.default_rng(0)
    draws = [share(10, 0.05, rng) for _ in range(4000)]
    assert set(draws) == {0, 1}
    assert abs(np.mean(draws) - 0.5) < 0.03
    assert share(20, 0.05, rng) == 1 and share(10, 0.0, rng) == 0 and share(7, 1.0, rng) == 7


def test_shares_read_both_settings():
    got = shares(20, {"random_sample_percent": 0.1, "eval_fraction": 0.05}, np.random.default_rng(1))
    assert got.explore == 2 and got.evaluation == 1
