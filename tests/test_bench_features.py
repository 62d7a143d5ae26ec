"""The label-efficiency benchmark keeps each data set's features between runs, and computes
them afresh when the data or the vectorizer changes."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import label_efficiency

from workers.simulation.data import load_dataset


def _write(folder: Path, n: int, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    words = ["red apple", "green pear", "blue sky", "grey cloud"]
    for split, rows in (("train", n), ("test", n // 2)):
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for i in range(rows):
                text = f"{words[i % 4]} number {i} {extra}"
                f.write(json.dumps({"text": text, "label": str(i % 2)}) + "\n")


def _features(folder: Path, cache: Path, vectorizer: str = "tfidf"):
    train, test = load_dataset(folder / "train.jsonl.gz"), load_dataset(folder / "test.jsonl.gz")
    return label_efficiency.cached_features(folder, train, test, vectorizer, str(cache))


def _counting(monkeypatch, dense: bool = False) -> list[str]:
    calls: list[str] = []
    real = label_efficiency.featurise

    def featurise(train, test, vectorizer, progress=None):
        calls.append(vectorizer)
        x, x_test = real(train, test, "tfidf", progress)
        return (x.toarray(), x_test.toarray()) if dense else (x, x_test)

    monkeypatch.setattr(label_efficiency, "featurise", featurise)
    return calls


def test_features_are_computed_once_and_read_back_the_same(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    _write(tmp_path / "toy", 40)
    first = _features(tmp_path / "toy", tmp_path / "cache")
    again = _features(tmp_path / "toy", tmp_path / "cache")
    assert calls == ["tfidf"]
    for a, b in zip(first, again, strict=True):
        assert sp.isspmatrix_csr(b) and b.dtype == a.dtype
        assert (a != b).nnz == 0 and np.array_equal(a.indices, b.indices)


def test_dense_features_come_back_dense(tmp_path, monkeypatch):
    calls = _counting(monkeypatch, dense=True)
    _write(tmp_path / "toy", 40)
    first = _features(tmp_path / "toy", tmp_path / "cache", "minilm")
    again = _features(tmp_path / "toy", tmp_path / "cache", "minilm")
    assert calls == ["minilm"]
    for a, b in zip(first, again, strict=True):
        assert isinstance(b, np.ndarray) and np.array_equal(a, b)


def test_other_data_or_vectorizer_or_no_cache_computes_afresh(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    _write(tmp_path / "toy", 40)
    _features(tmp_path / "toy", tmp_path / "cache")
    _features(tmp_path / "toy", tmp_path / "cache", "tfidf_char")
    _write(tmp_path / "toy", 40, extra="changed")
    _features(tmp_path / "toy", tmp_path / "cache")
    _features(tmp_path / "toy", tmp_path / "cache")
    assert calls == ["tfidf", "tfidf_char", "tfidf"]
    train = load_dataset(tmp_path / "toy" / "train.jsonl.gz")
    test = load_dataset(tmp_path / "toy" / "test.jsonl.gz")
    label_efficiency.cached_features(tmp_path / "toy", train, test, "tfidf", "")
    assert calls == ["tfidf", "tfidf_char", "tfidf", "tfidf"]
    assert not list((tmp_path / "cache").glob("*.part"))


def test_the_verdicts_never_count_random_as_an_alrank_strategy():
    """Random is the baseline: when it has the best area, alrank's best is still one of its
    own strategies, and the verdict against the peers says so."""
    curves = [
        {"strategy": name, "repeat": r, "labels": n, "accuracy": acc + 0.01 * r}
        for name, acc in (("random", 0.9), ("uncertainty", 0.7), ("peer", 0.8))
        for r in range(3)
        for n in (10, 20)
    ]
    summary = {
        "strategies": {"random": {"auc": 0.9}, "uncertainty": {"auc": 0.7}, "peer": {"auc": 0.8}},
        "curves": curves,
    }
    lines = label_efficiency.verdicts("set", summary, "uncertainty", {"peer": object()})
    (against_peers,) = [line for line in lines if line.startswith("3.")]
    assert "best alrank uncertainty" in against_peers and "NOT met" in against_peers


def test_labels_to_the_mark_follow_each_repeat_past_the_budget(tmp_path):
    """``--extend`` (target 2) replays the default strategy and random past the budget,
    with larger batches, until each repeat's own curve reaches 95% of the whole pool's."""
    import argparse

    from workers.simulation.spec import Settings

    _write(tmp_path / "toy", 200)
    train = load_dataset(tmp_path / "toy" / "train.jsonl.gz")
    test = load_dataset(tmp_path / "toy" / "test.jsonl.gz")
    features = label_efficiency.cached_features(tmp_path / "toy", train, test, "tfidf", "")
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=4,
        batch_size=4,
        budget=8,
        repeats=2,
        loop="seeded",
        vectorizer="tfidf",
    )
    args = argparse.Namespace(extend_batch=20, budget=8)
    out = label_efficiency.labels_to_mark(features, train, test, settings, ["uncertainty"], 1.0, args)
    assert set(out) == {"uncertainty", "random"}
    for got in out.values():
        assert len(got["per_repeat"]) == 2
        # a label count per repeat (past the budget of 8 when needed), or None short of the mark
        assert all(n is None or 4 <= n <= len(train) for n in got["per_repeat"])
    assert any(n is not None and n > 8 for got in out.values() for n in got["per_repeat"])
