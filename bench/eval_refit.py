"""What serving a refit with the evaluation labels changes: the served loop with
``train_on_eval`` on (the default) and off, on the same pools.

Each repeat replays the service's loop (``workers.simulation.served``, every default but
the two named here) on a random 90% of a data set's train split up to ``--budget`` labels,
and measures the model served at the end on the test split. With ``train_on_eval`` off,
the model served is the fit measured on the evaluation sample; on, it is that kind fitted
again with the labelled evaluation items too. The repeats are paired (the same pool); the
table gives the median [range] of each arm, the median paired difference, in how many
repeats the refit is ahead, and whether either arm is beyond the other's spread.

Usage: ``python bench/eval_refit.py [--datasets trec,sst2] [--budget 1000] [--repeats 5]
[--jobs 2] [--vectorizer tfidf+wordllama] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def run(name: str, refit: bool, repeat: int, budget: int, vectorizer: str) -> float:
    """The served model's test accuracy after ``budget`` labels of one replay."""
    from numeric_pools import splits
    from threadpoolctl import threadpool_limits

    from workers import defaults
    from workers.simulation.engine import run_served
    from workers.simulation.spec import Settings

    train, test = splits(name)
    settings = Settings(
        [defaults.QUERY_STRATEGY],
        budget=budget,
        gain_every=0,
        params={"train_on_eval": refit},
        **({"vectorizer": vectorizer} if vectorizer else {}),
    )
    with threadpool_limits(1):
        points = run_served(defaults.QUERY_STRATEGY, repeat, train, test, settings)
    return points[-1].accuracy


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="trec,sst2")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--vectorizer", default="", help="text features (default: the service's)")
    ap.add_argument("--markdown", default="")
    args = ap.parse_args()
    started = time.perf_counter()
    names = [d for d in args.datasets.split(",") if d]
    with ProcessPoolExecutor(args.jobs) as ex:
        runs = {
            (name, refit, r): ex.submit(run, name, refit, r, args.budget, args.vectorizer)
            for name in names
            for refit in (True, False)
            for r in range(args.repeats)
        }
        done = {key: f.result() for key, f in runs.items()}
    lines = [
        "| data set | served refit (default) | measured fit served | refit minus fit, median | "
        "refit ahead | beyond the spread |\n|---|---|---|---|---|---|"
    ]
    for name in names:
        on = [done[(name, True, r)] for r in range(args.repeats)]
        off = [done[(name, False, r)] for r in range(args.repeats)]
        diffs = [a - b for a, b in zip(on, off, strict=True)]
        beyond = "refit" if min(on) > max(off) else "fit" if min(off) > max(on) else "neither (a tie)"
        lines.append(
            f"| {name} | {spread(on)} | {spread(off)} | {statistics.median(diffs):+.3f} | "
            f"{sum(d > 0 for d in diffs)} of {args.repeats} | {beyond} |"
        )
    text = "\n".join(lines)
    text += f"\n\nTest accuracy at {args.budget} labels, {args.repeats} paired repeats; "
    text += f"features: {args.vectorizer or 'the default'}; {time.perf_counter() - started:.0f} s in all."
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
