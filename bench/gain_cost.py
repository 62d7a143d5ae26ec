"""What the live gain over random costs a retrain.

A version that estimates the gain trains random labelling's curve: ``GAIN_FOLDS`` x
``GAIN_ORDERS`` x ``GAIN_POINTS`` models on the exploration share's uniform draws and the
evaluation sample, then bootstraps the readings. This script times that estimate on a
shared text set with the default features, at the exploration and evaluation labels a
project with the default shares has at 300, 1,000 and 3,000 labels, beside the baseline
measured in the same run: one fit of the served model on all those labels (what a retrain
costs without the gain). Medians of ``--repeats``.

Usage: ``python bench/gain_cost.py [--dataset ag_news] [--labels 300,1000,3000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers import defaults  # noqa: E402
from workers.evaluation import predict_labels  # noqa: E402
from workers.gain import gain_over_random  # noqa: E402
from workers.models import train_single_label  # noqa: E402
from workers.simulation.data import featurise, load_dataset  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def fit(x, targets: list):
    """The schema's model as the gain's curve trains it (no calibration: the argmax is the same)."""
    if len(set(targets)) < 2:
        return None
    model = train_single_label(x, list(targets), 0, calibrate=False)
    return lambda xe: predict_labels(model, xe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ag_news")
    ap.add_argument("--labels", default="300,1000,3000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vectorizer", default=defaults.VECTORIZER_NAME)
    args = ap.parse_args()
    folder = DATASETS / args.dataset
    train = load_dataset(folder / "train.jsonl.gz")
    x, _ = featurise(train, load_dataset(folder / "test.jsonl.gz"), args.vectorizer)
    y = train.labels
    print(f"{args.dataset}, {args.vectorizer} ({x.shape[1]:,} columns); medians of {args.repeats}")
    print("| labels | uniform draws | evaluation labels | served model's fit | gain estimate |")
    print("|---|---|---|---|---|")
    for labels in (int(v) for v in args.labels.split(",")):
        n_eval = min(defaults.EVAL_SIZE, round(defaults.EVAL_FRACTION * labels))
        n_random = round(defaults.RANDOM_SAMPLE_PERCENT * (labels - n_eval))
        fits, gains = [], []
        for repeat in range(args.repeats):
            order = np.random.default_rng([repeat, labels]).permutation(x.shape[0])
            trained, held = order[:labels], order[labels : labels + n_eval]
            drawn = trained[:n_random]
            started = time.perf_counter()
            served = fit(x[trained], [y[i] for i in trained])
            fits.append(time.perf_counter() - started)
            assert served is not None
            started = time.perf_counter()
            gain_over_random(
                fit,
                x[drawn],
                [y[i] for i in drawn],
                x[held],
                [y[i] for i in held],
                served(x[held]),
                labels,
                repeat,
                defaults.MIN_INSTANCES_FOR_TRAINING,
            )
            gains.append(time.perf_counter() - started)
        print(
            f"| {labels:,} | {n_random} | {n_eval} | {statistics.median(fits):.2f} s | "
            f"{statistics.median(gains):.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
