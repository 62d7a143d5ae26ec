"""Labelled data sets for replays: read from JSON Lines (gzipped or not) or CSV, or from a
project's labelled items; their features, and a random test split."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer

from workers.exceptions import InvalidInput
from workers.features import Progress as FeatureProgress
from workers.features import VectorScale, pool_features


@dataclass
class Dataset:
    """Rows of text or feature vectors, with their labels."""

    texts: list[str] | None
    rows: list[list] | None
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> Dataset:
        return Dataset(
            [self.texts[i] for i in idx] if self.texts is not None else None,
            [self.rows[i] for i in idx] if self.rows is not None else None,
            [self.labels[i] for i in idx],
        )


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def load_dataset(path: str | Path) -> Dataset:
    """JSON Lines (``{"text"|"features", "label"}``, optionally gzip'd) or CSV with a
    ``label`` column and either a ``text`` column or numeric feature columns."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    name = path.name.removesuffix(".gz")
    with _open_text(path) as f:
        if name.endswith((".jsonl", ".json")):
            records = (
                (f"{path}:{n}", _json_line(line, path, n)) for n, line in enumerate(f, 1) if line.strip()
            )
            return dataset_from_records(records, str(path))
        if not name.endswith(".csv"):
            raise InvalidInput(f"{path}: use .jsonl, .jsonl.gz or .csv")
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "label" not in fields:
            raise InvalidInput(f"{path}: the CSV needs a 'label' column; it has {fields}")
        feature_cols = [c for c in fields if c not in ("label", "id", "text")]
        texts: list[str] = []
        rows: list[list] = []
        labels: list[str] = []
        for rec in reader:
            labels.append(rec["label"])
            if "text" in fields:
                texts.append(rec["text"] or "")
            else:
                rows.append([_number_or_text(rec[c]) for c in feature_cols])
    return _dataset(texts, rows, labels, str(path))


def _json_line(line: str, path: Path, n: int):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{n}: not JSON ({exc.msg})") from None


def dataset_from_records(records: Iterable[tuple[str, dict]], source: str) -> Dataset:
    """A data set from ``(where, {"text"|"features", "label"})`` records; ``where`` names a
    record in error messages (a file and line, or a position in a request)."""
    texts: list[str] = []
    rows: list[list] = []
    labels: list[str] = []
    for where, obj in records:
        if not isinstance(obj, dict) or "label" not in obj:
            raise InvalidInput(f"{where}: a row needs a 'label'")
        labels.append(str(obj["label"]))
        if obj.get("text") is not None:
            texts.append(str(obj["text"]))
        elif obj.get("features") is not None:
            rows.append(list(obj["features"]))
        else:
            raise InvalidInput(f"{where}: a row needs 'text' or 'features'")
    return _dataset(texts, rows, labels, source)


def _dataset(texts: list[str], rows: list[list], labels: list[str], source: str) -> Dataset:
    if texts and rows:
        raise InvalidInput(f"{source}: rows mix 'text' and 'features'; use one kind")
    if len(set(labels)) < 2:
        raise InvalidInput(f"{source}: the data set needs at least two labels")
    return Dataset(texts if texts else None, rows if rows else None, labels)


def _number_or_text(value: str | None):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def featurise(
    train: Dataset, test: Dataset, vectorizer: str = "tfidf", progress: FeatureProgress | None = None
):
    """Features for both splits, fitted without labels on all their rows together, as the
    service fits them on the whole pool it is sent. ``progress(fraction)`` hears how far
    an embedding part has got (MiniLM on long texts: minutes)."""
    if train.texts is not None and test.texts is not None:
        x = pool_features(train.texts + test.texts, None, vectorizer, progress)
    else:
        # the vectors a client would upload, scaled as the service scales them
        _, x = VectorScale.standardise(numeric_rows((train.rows or []) + (test.rows or [])))
    return x[: len(train)], x[len(train) :]


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = max(1, round(fraction * len(data)))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def numeric_rows(rows: list[list]) -> np.ndarray:
    """Rows as the vectors a client would upload: numbers as they are, text values one-hot,
    missing values 0."""
    records = [{str(j): v for j, v in enumerate(row) if v is not None} for row in rows]
    return DictVectorizer(sparse=False).fit_transform(records).astype(np.float32)
