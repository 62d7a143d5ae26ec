"""The served-loop replay (workers/simulation/served.py) against the running service."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from procs import Serve

from alrank.client import Client
from workers.simulation.served import ServedPool, replay

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from served_loop import http_replay

WORDS = {
    "sport": "goal match striker league coach penalty season keeper derby".split(),
    "politics": "vote senate budget minister party election tax bill court".split(),
    "science": "atom cell gene orbit quantum fossil enzyme telescope lab".split(),
}
FILLER = "the a of and to in with for on at by from".split()


def texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [str(rng.choice(list(WORDS), p=[0.6, 0.3, 0.1])) for _ in range(n)]
    out = []
    for label in labels:
        # a third of the words are the class's, the rest shared: classes overlap
        words = list(rng.choice(WORDS[label], 3)) + list(rng.choice(FILLER + WORDS["sport"], 7))
        rng.shuffle(words)
        out.append(" ".join(words))
    return out, labels


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Serve(tmp_path_factory.mktemp("served") / "data")
    yield s
    s.close()


@pytest.mark.parametrize(
    "al",
    [
        {"vectorizer_name": "tfidf"},
        {"vectorizer_name": "tfidf", "random_sample_percent": 0.15, "query_strategy": "uncertainty"},
    ],
    ids=["defaults", "exploring"],
)
def test_the_replay_and_the_service_agree_exactly(service, al):
    """Item by item and model by model: the same batches, the same accuracies."""
    pool_texts, pool_labels = texts(300, 1)
    test_texts, test_labels = texts(120, 2)
    ids = [f"item-{k:03d}" for k in range(300)][::-1]  # uploaded out of id order
    pool = ServedPool(ids, pool_texts, None, dict(zip(ids, pool_labels, strict=True)))
    client = Client(service.base, service.admin_key)
    name = "replay-" + str(len(al))
    over_http, uploads = http_replay(client, name, pool, test_texts, test_labels, al, 10, 80)
    replayed = replay(pool, test_texts, None, test_labels, al, 10, 80, uploads)
    assert len(replayed) >= 5
    assert [p.labelled_ids for p in over_http] == [p.labelled_ids for p in replayed]
    assert [p.model_version for p in over_http] == [p.model_version for p in replayed]
    np.testing.assert_allclose([p.accuracy for p in over_http], [p.accuracy for p in replayed], atol=1e-9)
    assert replayed[-1].accuracy > 0.6


def test_the_replay_and_the_service_agree_on_vectors_in_their_own_units(service):
    """A numeric pool: columns on scales a thousand times apart, standardised by both."""
    rng = np.random.default_rng(5)
    centres = {"low": (0.0, 0.0, 0.0), "mid": (1.0, 0.5, 0.0), "high": (2.0, 0.0, 1.0)}
    truth = [str(c) for c in rng.choice(list(centres), 360)]
    units = np.array([1.0, 1000.0, 0.01])
    x = np.array([rng.normal(centres[c], 0.6) * units for c in truth], dtype=np.float32)
    ids = [f"v{k:03d}" for k in range(300)]
    pool = ServedPool(ids, [""] * 300, x[:300], dict(zip(ids, truth[:300], strict=True)))
    test_vectors, test_labels = x[300:].tolist(), truth[300:]
    blank = [""] * len(test_labels)
    al = {"min_instances_for_training": 10, "update_frequency": 10}
    client = Client(service.base, service.admin_key)
    over_http, uploads = http_replay(
        client, "replay-vectors", pool, blank, test_labels, al, 10, 60, test_vectors
    )
    replayed = replay(pool, blank, test_vectors, test_labels, al, 10, 60, uploads)
    assert len(replayed) >= 4
    assert [p.labelled_ids for p in over_http] == [p.labelled_ids for p in replayed]
    np.testing.assert_allclose([p.accuracy for p in over_http], [p.accuracy for p in replayed], atol=1e-9)
    assert replayed[-1].accuracy > 0.7


def test_a_replay_is_the_same_every_time():
    pool_texts, pool_labels = texts(200, 3)
    ids = [f"i{k}" for k in range(200)]
    pool = ServedPool(ids, pool_texts, None, dict(zip(ids, pool_labels, strict=True)))
    test_texts, test_labels = texts(50, 4)
    runs = [
        replay(pool, test_texts, None, test_labels, {"vectorizer_name": "tfidf"}, 10, 60) for _ in range(2)
    ]
    assert [p.labelled_ids for p in runs[0]] == [p.labelled_ids for p in runs[1]]


def test_a_replay_measures_the_fit_a_gain_is_for_apart_from_the_served_model():
    """The served model learns from the evaluation labels too; the gain is estimated for the
    fit without them, so a replay that estimates gains measures that fit apart. With
    ``train_on_eval`` off the two are one model."""
    pool_texts, pool_labels = texts(300, 6)
    ids = [f"i{k}" for k in range(300)]
    pool = ServedPool(ids, pool_texts, None, dict(zip(ids, pool_labels, strict=True)))
    test_texts, test_labels = texts(200, 7)
    al = {"vectorizer_name": "tfidf", "eval_fraction": 0.3}
    points = replay(pool, test_texts, None, test_labels, al, 10, 100, gain_every=50)
    assert all(p.measured_accuracy is not None for p in points)
    assert any(p.measured_accuracy != p.accuracy for p in points if p.eval_ids)
    off = replay(pool, test_texts, None, test_labels, {**al, "train_on_eval": False}, 10, 100, gain_every=50)
    assert all(p.measured_accuracy == p.accuracy for p in off)
