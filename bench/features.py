"""Features computed once per pool: what a retrain pays for features, cached or not.

A pool of real texts (SST-2 phrases from ``../shared/datasets/sst2_glue``) is featurised
once; then, as after an upload of new items, 1% more items arrive and the features are
asked for again: once from scratch (what every retrain paid before the cache), once through
:class:`workers.features.FeatureCache` (rows of unchanged items reused, new ones computed
with the fitted vocabulary). The cache here is an in-memory dict holding the same
serialised bytes the service keeps in Redis, so (de)serialisation is in the figure.
Median of ``--repeats``.

Usage: ``python bench/features.py [--items 60000] [--vectorizer tfidf+wordllama]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.features import FeatureCache, pool_features  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "sst2_glue" / "train.jsonl.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=60_000)
    ap.add_argument("--new-share", type=float, default=0.01)
    ap.add_argument("--vectorizer", default="tfidf+wordllama")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    texts = [json.loads(line)["text"] for line in gzip.open(DATA, "rt", encoding="utf-8")]
    n_new = max(1, int(args.items * args.new_share))
    base, new = texts[: args.items], texts[args.items : args.items + n_new]
    ids = [f"i{k}" for k in range(len(base) + len(new))]
    print(f"{len(base)} items, then {len(new)} new; features {args.vectorizer}; median of {args.repeats}")
    scratch, cached = [], []
    for _ in range(args.repeats):
        blobs: dict[str, bytes] = {}
        cache = FeatureCache(blobs.get, blobs.__setitem__)
        cache.pool_features(ids[: len(base)], base, None, args.vectorizer)
        t0 = time.perf_counter()
        pool_features(base + new, None, args.vectorizer)
        scratch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, report = cache.pool_features(ids, base + new, None, args.vectorizer)
        cached.append(time.perf_counter() - t0)
        assert all(n == len(new) for n in report.computed.values()), report
    size = sum(len(b) for b in blobs.values()) / 2**20
    a, b = statistics.median(scratch), statistics.median(cached)
    print(f"| from scratch (baseline) | {a:.3f} s |")
    print(f"| cached, {len(new)} new items | {b:.3f} s ({a / b:.1f}x faster) |")
    print(f"cache size: {size:.1f} MiB")


if __name__ == "__main__":
    main()
