"""Reading the files the ``alrank`` commands upload: JSONL (optionally gzip'd), CSV and
Parquet records, read one at a time so a file of millions never sits in memory whole."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path


class InputError(Exception):
    """An input file that cannot be read as asked."""


def readable(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"no file {path}")
    return path


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc


def read_records(path: Path) -> Iterator[dict]:
    """Records of a JSONL (optionally gzip'd), CSV or Parquet file, one at a time."""
    name = path.name.lower()
    if not path.exists():
        raise InputError(f"no file {path}")
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InputError("reading Parquet needs pyarrow: pip install pyarrow") from exc
        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
        return
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        if name.endswith((".csv", ".csv.gz")):
            yield from csv.DictReader(f)
            return
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{n}: not JSON ({exc})") from exc
            if not isinstance(record, dict):
                raise InputError(f"{path}:{n}: expected a JSON object")
            yield record


def count_records(path: Path) -> int | None:
    """How many records a file holds (for the progress bar's ETA), or None for Parquet
    without pyarrow's metadata."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        except ImportError:
            return None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as f:
        lines = sum(1 for line in io.BufferedReader(f) if line.strip())  # type: ignore[arg-type]
    return lines - 1 if name.endswith((".csv", ".csv.gz")) else lines
