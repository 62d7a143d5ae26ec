"""Does the live gain over random tell the truth? Its interval's coverage on the shared sets.

A project's metrics say "the model at N labels is as accurate as random labelling would be
at about M labels (95% interval lo to hi)", estimated from the exploration share's uniform
draws and the evaluation sample alone (``workers.gain``). On a labelled data set the truth
is known: ``alrank simulate`` replays the served loop for the default strategy and for
``random``, and the random strategy's mean test curve says how many training labels random
labelling really needs to reach each served model's test accuracy.

For each data set this script runs that simulation (the service's own loop and estimator,
``--gain-every`` labels apart) and prints, per strategy: how many estimates were made, how
often the 95% interval held the truth, how many truths lay past the budget (then the
interval covers when its top does too), how wide the bounded intervals were (median of
high / low), the verdicts, and how many verdicts the truth contradicts ("saving" where
random labelling needed no more labels, "not helping" where it needed more). The
``random`` strategy's rows are the honest check of the verdicts: its true gain is nil.

Usage: ``python bench/gain_coverage.py [--datasets trec,sst2,sms_spam,ag_news]
[--repeats 3] [--budget 1000] [--gain-every 100] [--out bench/out/gain]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numeric_pools  # noqa: E402

from workers import defaults  # noqa: E402
from workers.simulation.data import load_dataset  # noqa: E402
from workers.simulation.engine import simulate  # noqa: E402
from workers.simulation.progress import terminal_progress  # noqa: E402
from workers.simulation.spec import Settings  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def folder(name: str) -> Path:
    shared = DATASETS / name
    return shared if shared.exists() else numeric_pools.folder(name)


def row(name: str, strategy: str, v: dict) -> str:
    ratio = v["median_high_over_low"]
    verdicts = v["verdicts"]
    return (
        f"| {name} | {strategy} | {v['estimates']} | {v['covered']} ({v['coverage']:.0%}) | "
        f"{v['truth_beyond_budget']} | {v['bounded']} | {'-' if ratio is None else f'{ratio:.1f}x'} | "
        f"{verdicts['saving']} / {verdicts['undecided']} / {verdicts['not_helping']} | "
        f"{v['wrong_verdicts']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="trec,sst2,sms_spam,ag_news")
    ap.add_argument("--strategy", default=defaults.QUERY_STRATEGY)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--gain-every", type=int, default=defaults.SIMULATION_GAIN_EVERY)
    ap.add_argument("--vectorizer", default=defaults.VECTORIZER_NAME)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gain"))
    args = ap.parse_args()
    rows = []
    totals = {"estimates": 0, "covered": 0}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        path = folder(name)
        settings = Settings(
            strategies=[args.strategy],
            repeats=args.repeats,
            budget=args.budget,
            gain_every=args.gain_every,
            vectorizer=args.vectorizer,
        )
        print(f"{name}: served loop, {args.repeats} repeats to {args.budget} labels", flush=True)
        summary = simulate(
            load_dataset(path / "train.jsonl.gz"),
            load_dataset(path / "test.jsonl.gz"),
            settings,
            Path(args.out) / name,
            progress=terminal_progress(),
        )
        for strategy, v in summary["gain_validation"].items():
            rows.append(row(name, strategy, v))
            totals["estimates"] += v["estimates"]
            totals["covered"] += v["covered"]
        print(f"   {time.perf_counter() - started:.0f} s; per estimate: {Path(args.out) / name}/gain.csv")
    print()
    print(
        f"gain over random against the truth (served loop, {args.repeats} repeats, {args.budget} labels, "
        f"an estimate every {args.gain_every} labels; features {args.vectorizer})"
    )
    print(
        "| data set | strategy | estimates | interval covers the truth | truth past the budget | "
        "bounded intervals | median high/low | saving / undecided / not helping | wrong verdicts |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    if totals["estimates"]:
        print(
            f"all: {totals['covered']} of {totals['estimates']} intervals covered the truth "
            f"({totals['covered'] / totals['estimates']:.0%})"
        )


if __name__ == "__main__":
    main()
