"""A pool of a million items through ``alrank serve``, retrained again and again.

Starts ``alrank serve`` on a fresh data dir, uploads ``--items`` items over HTTP (10,000
per request), then labels as an annotation tool does (ask for a batch, label it) and waits
after every ``update_frequency`` labels for the next model version to be served by
``GET /next``. Prints the upload time and, per retrain, the seconds from the label that
triggered it to its model being served, and that no acknowledged label was lost.
Usage: ``python bench/million.py [--items 1000000] [--retrains 3]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import Annotator, Serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--retrains", type=int, default=3)
    parser.add_argument("--strategy", default="diverse_uncertainty")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        s = Serve(Path(tmp) / "data")
        try:
            ann = Annotator(s.base, s.admin_key, project="million")
            t = time.monotonic()
            ann.create(n=args.items, seed=1, query_strategy=args.strategy)
            print(f"uploaded {args.items:,} items in {time.monotonic() - t:.0f} s", flush=True)
            version = None
            for k in range(args.retrains + 1):
                t = time.monotonic()
                ann.label_round(10)
                if k == 0:
                    ann.label_round(10)
                version, _ = ann.wait_for_version_above(version, 3600)
                print(
                    f"retrain {k + 1}: model version {version} served {time.monotonic() - t:.0f} s after "
                    f"its triggering labels ({len(ann.acked)} labels so far)",
                    flush=True,
                )
            print(f"acknowledged labels lost: {len(ann.lost_labels())}")
        finally:
            s.close()


if __name__ == "__main__":
    main()
