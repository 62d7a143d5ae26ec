"""How many evaluation labels a learning curve needs: the measurement behind ``EVAL_SIZE``.

The service measures every model version on a uniform sample of the pool and draws a 95%
interval around each figure (Wilson for accuracy, a percentile bootstrap for macro-F1:
``workers.evaluation``). This script asks how large that sample must be for the interval
to stay within +-0.05, on real pools and real models rather than on the formula alone.

For each data set in ``../shared/datasets/`` (and the numeric pools of
``bench/numeric_pools.py``), the service's own model is trained on ``--labels`` random
labels from the pool (100, 300 and 1,000 by default: the accuracies a project passes
through). The rest of the pool is the population an evaluation sample is drawn from; the
model's accuracy on all of it is the truth. For each evaluation size, ``--draws`` uniform
samples are drawn and the service's intervals computed on each. The table gives the median
half-width of the accuracy interval, how often it covers the truth, and the median
half-width of the macro-F1 interval; the last line, the smallest size whose median
accuracy half-width is at most 0.05 everywhere.

Usage: ``python bench/eval_size.py [--datasets sms_spam,trec,sst2,ag_news,adult,digits]
[--sizes 50,100,200,300,400,600] [--labels 100,300,1000] [--draws 400]``
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
sys.path.insert(0, str(ROOT / "bench"))

import numeric_pools  # noqa: E402

from workers import defaults  # noqa: E402
from workers.evaluation import bootstrap_macro_f1, wilson  # noqa: E402
from workers.exceptions import NotTrainable  # noqa: E402
from workers.models import train_single_label  # noqa: E402
from workers.simulation.data import featurise, load_dataset  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
TARGET = 0.05
"""The half-width the evaluation sample's default is chosen to reach."""


def folder(name: str) -> Path:
    shared = DATASETS / name
    return shared if shared.exists() else numeric_pools.folder(name)


def pool(name: str, vectorizer: str) -> tuple[object, list[str]]:
    """The data set's training split as a pool: its features and its labels."""
    path = folder(name)
    train = load_dataset(path / "train.jsonl.gz")
    x, _ = featurise(train, load_dataset(path / "test.jsonl.gz"), vectorizer)
    return x, train.labels


def correct_on_pool(x, labels_of: list[str], labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Whether a model on ``labels`` random labels is right on each other pool item, and the
    item's class index and prediction's (for macro-F1)."""
    rng = np.random.default_rng([seed, labels])
    order = rng.permutation(x.shape[0])
    rows, rest = order[:labels], order[labels:]
    y = [labels_of[i] for i in rows]
    truth = [labels_of[i] for i in rest]
    try:
        model = train_single_label(x[rows], y, seed)
        pred = [model.classes[j] for j in model.predict_proba(x[rest]).argmax(axis=1)]
    except NotTrainable:
        pred = [y[0]] * len(rest)
    classes = {c: k for k, c in enumerate(sorted(set(truth) | set(pred)))}
    return (
        np.array([p == t for p, t in zip(pred, truth, strict=True)]),
        np.array([[classes[t], classes[p]] for p, t in zip(pred, truth, strict=True)]),
    )


def measure(right: np.ndarray, coded: np.ndarray, size: int, draws: int, f1_draws: int, seed: int) -> dict:
    """Median half-widths and the accuracy interval's coverage over ``draws`` samples."""
    truth = float(right.mean())
    rng = np.random.default_rng([seed, size])
    halves, covered, f1_halves = [], 0, []
    for d in range(draws):
        sample = rng.choice(len(right), size, replace=False)
        lo, hi = wilson(float(right[sample].sum()), size)
        halves.append((hi - lo) / 2)
        covered += lo <= truth <= hi
        if d < f1_draws:
            t, p = coded[sample, 0].tolist(), coded[sample, 1].tolist()
            f_lo, f_hi = bootstrap_macro_f1(t, p, seed=d)
            f1_halves.append((f_hi - f_lo) / 2)
    return {
        "accuracy": truth,
        "half": statistics.median(halves),
        "coverage": covered / draws,
        "f1_half": statistics.median(f1_halves),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="sms_spam,trec,sst2,ag_news,adult,digits")
    ap.add_argument("--sizes", default="50,100,200,300,400,600")
    ap.add_argument("--labels", default="100,300,1000")
    ap.add_argument("--draws", type=int, default=400, help="evaluation samples per cell")
    ap.add_argument("--f1-draws", type=int, default=60, help="of them, with a macro-F1 bootstrap")
    ap.add_argument("--vectorizer", default=defaults.VECTORIZER_NAME)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    print(
        f"95% interval half-widths on uniform evaluation samples of the pool, medians of {args.draws} "
        f"samples (macro-F1: {args.f1_draws}); coverage: share of accuracy intervals holding the "
        f"model's accuracy on the whole rest of the pool. Features: {args.vectorizer}.\n"
    )
    print("| data set | labels | accuracy | " + " | ".join(f"n={s}" for s in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    worst = dict.fromkeys(sizes, 0.0)
    for name in args.datasets.split(","):
        x, labels_of = pool(name, args.vectorizer)
        for labels in (int(v) for v in args.labels.split(",")):
            right, coded = correct_on_pool(x, labels_of, labels, args.seed)
            cells = []
            for size in sizes:
                if size > len(right) // 2:  # a sample of most of what is left measures little
                    cells.append("-")
                    continue
                m = measure(right, coded, size, args.draws, args.f1_draws, args.seed)
                worst[size] = max(worst[size], m["half"])
                cells.append(f"±{m['half']:.3f} ({m['coverage']:.0%}), F1 ±{m['f1_half']:.3f}")
            print(f"| {name} | {labels} | {right.mean():.3f} | " + " | ".join(cells) + " |", flush=True)
    enough = [s for s in sizes if worst[s] <= TARGET]
    print()
    print("widest median accuracy half-width by size: " + ", ".join(f"{s}: ±{worst[s]:.3f}" for s in sizes))
    if enough:
        print(f"smallest size within ±{TARGET} everywhere: {enough[0]}")
    else:
        print(f"no size within ±{TARGET} everywhere")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
