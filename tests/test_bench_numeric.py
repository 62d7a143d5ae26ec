"""The numeric pools the benchmarks build (bench/numeric_pools.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import numeric_pools

from workers.simulation.data import featurise, load_dataset


def test_a_built_pool_reads_as_a_shared_data_set(tmp_path):
    folder = numeric_pools.folder("digits", tmp_path)
    train = load_dataset(folder / "train.jsonl.gz")
    test = load_dataset(folder / "test.jsonl.gz")
    assert len(train) + len(test) == 1797 and len(test) == 1797 // 4
    assert train.texts is None and len(train.rows[0]) == 64
    x_train, x_test = featurise(train, test)
    # standardised over both splits together, as the service scales a pool's vectors
    both = np.vstack([x_train, x_test])
    assert abs(float(both.mean())) < 1e-4
    # built once: a second call reads the same files
    before = (folder / "train.jsonl.gz").stat().st_mtime_ns
    assert numeric_pools.folder("digits", tmp_path) == folder
    assert (folder / "train.jsonl.gz").stat().st_mtime_ns == before


def test_the_covertype_like_pool_has_curved_boundaries():
    x, y = numeric_pools.covertype_like(4000)
    assert x.shape == (4000, 54) and len(set(y)) == 7
    assert np.all(x[:, 10:14].sum(axis=1) == 1) and np.all(x[:, 14:].sum(axis=1) == 1)  # one-hot
    scaled = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1)
    linear = LogisticRegression(max_iter=2000).fit(scaled[:3000], y[:3000]).score(scaled[3000:], y[3000:])
    tree = (
        DecisionTreeClassifier(max_depth=8, random_state=0).fit(x[:3000], y[:3000]).score(x[3000:], y[3000:])
    )
    assert tree > linear + 0.05  # no linear boundary does as well as a non-linear one


def test_the_letter_like_pool_is_letters_shape():
    x, y = numeric_pools.letter_like(2600)
    assert x.shape == (2600, 16) and len(set(y)) == 26
    assert x.min() == 0 and x.max() == 15 and np.all(x == np.round(x))
