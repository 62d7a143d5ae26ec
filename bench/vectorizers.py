"""Which features and model learn most from few labels: the measurement behind the defaults.

For each data set in ``../shared/datasets/`` (official test split) and each vectorizer and
classifier alrank offers, it trains the service's own model (:func:`workers.simulation.engine.evaluate`)
on ``--labels`` random labelled items and reports test accuracy, median over ``--repeats``
draws, with the same model trained on the whole pool beside it. The features come from the
service's code too (:func:`workers.simulation.engine.featurise`: fitted on all texts, no labels). Complement
naive Bayes needs non-negative features, so it is skipped on the dense embedding.

Usage: ``python bench/vectorizers.py [--datasets sms_spam,trec,ag_news,sst2] [--labels 300]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.features import VECTORIZERS  # noqa: E402
from workers.model_kinds import CLASSIFIERS, NAIVE_BAYES  # noqa: E402
from workers.simulation.data import featurise, load_dataset  # noqa: E402
from workers.simulation.engine import evaluate  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="sms_spam,trec,ag_news,sst2")
    ap.add_argument("--vectorizers", default=",".join(VECTORIZERS))
    ap.add_argument("--classifiers", default=",".join(CLASSIFIERS))
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"accuracy on the test split: {args.labels} random labels (median of {args.repeats}) / whole pool")
    print("| data set | vectorizer | " + " | ".join(args.classifiers.split(",")) + " |")
    print("|---|---|" + "---|" * len(args.classifiers.split(",")))
    for name in args.datasets.split(","):
        train = load_dataset(DATASETS / name / "train.jsonl.gz")
        test = load_dataset(DATASETS / name / "test.jsonl.gz")
        for vectorizer in args.vectorizers.split(","):
            x, x_test = featurise(train, test, vectorizer)
            cells = []
            for classifier in args.classifiers.split(","):
                if classifier in NAIVE_BAYES and x.min() < 0:
                    cells.append("n/a")
                    continue
                few = []
                for repeat in range(args.repeats):
                    rows = np.random.default_rng([7, repeat]).choice(x.shape[0], args.labels, replace=False)
                    y = [train.labels[i] for i in rows]
                    few.append(evaluate(x[rows], y, x_test, test.labels, repeat, classifier)[1])
                full = evaluate(x, train.labels, x_test, test.labels, 0, classifier)[1]
                cells.append(f"{statistics.median(few):.3f} / {full:.3f}")
            print(f"| {name} | {vectorizer} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
