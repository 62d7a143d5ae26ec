"""Peak memory of embedding a pool's rows with checkpoints, against copying them whole.

A first embedding of a large pool (MiniLM: about an hour for a million short texts on two
cores) saves the rows done so far every ``FEATURE_CHECKPOINT_SECONDS``, so a job stopped by
its timeout leaves them to the next (``FeatureCache._embed``). Each arm runs in a process of
its own on a fresh feature directory and embeds ``--items`` rows of 384 columns (MiniLM's
width) with a stand-in embedding of random numbers (storage and copies do not look at the
values; MiniLM itself would take the hour), saving a checkpoint after every step of
``--step`` rows:

- **copied whole** (the baseline, how checkpoints were saved before): the rows done are
  gathered into one array in memory (``rows[done]``) and saved;
- **a step at a time**: ``FeatureCache._copy_rows`` copies them into a file of the feature
  directory a step at a time, handing the pages back as it goes.

Prints each arm's peak resident memory (``ru_maxrss``) over ``--repeats`` processes (median
and range), its checkpoints and seconds, and checks that the rows kept read back exactly.

Usage: ``python bench/checkpoint_memory.py [--items 1000000] [--step 65536] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH = 384
ARMS = ("copied whole", "a step at a time")


def one(arm: str, items: int, step: int) -> dict:
    """One arm in this process: its peak memory, checkpoints and seconds."""
    from workers import defaults
    from workers.features import cache as cache_mod
    from workers.features.files import FeatureFiles

    def stand_in(texts: list[str], progress=None) -> np.ndarray:
        start = int(texts[0].split()[1]) if texts else 0
        return np.random.default_rng(start).standard_normal((len(texts), WIDTH), dtype=np.float32)

    cache_mod.EMBEDDINGS["minilm"] = stand_in
    defaults.FEATURE_CHECKPOINT_SECONDS = 0.0
    defaults.EMBED_STEP_ROWS = step
    if arm == "copied whole":
        FeatureFiles._copy_rows = lambda self, part, rows, which: rows[which]  # type: ignore[method-assign]
    ids = [f"i{k}" for k in range(items)]
    texts = [f"t {k}" for k in range(items)]
    with tempfile.TemporaryDirectory() as tmp:
        files = FeatureFiles(Path(tmp))
        started = time.perf_counter()
        files.pool_features(ids, texts, None, "minilm")
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        kept = files.read("minilm")
        assert kept is not None and kept.ids == ids
        for start in range(0, items, step):  # the rows kept are the rows embedded
            assert np.array_equal(kept.rows[start : start + step], stand_in(texts[start : start + step]))
    return {"peak": peak, "checkpoints": files.checkpoints, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--step", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.items, args.step)))
        return
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for _ in range(args.repeats):
        for arm in ARMS:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                arm,
                "--items",
                str(args.items),
                "--step",
                str(args.step),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[arm].append(json.loads(out.splitlines()[-1]))
    print(
        f"{args.items:,} rows of {WIDTH} float32, a checkpoint every {args.step:,} rows, "
        f"{args.repeats} repeats:"
    )
    for arm, rs in runs.items():
        peaks = [r["peak"] / 2**30 for r in rs]
        low, high = min(peaks), max(peaks)
        print(
            f"  {arm:17} peak resident {statistics.median(peaks):.2f} GiB ({low:.2f}-{high:.2f}), "
            f"{rs[0]['checkpoints']} checkpoints, {statistics.median(r['seconds'] for r in rs):.1f} s"
        )


if __name__ == "__main__":
    main()
