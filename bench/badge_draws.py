"""How much of a BADGE comparison is the luck of the draw.

BADGE samples each pick after the first with probability proportional to its squared
distance to the nearest pick, so two correct implementations given the same model, pool
and seed labels still choose different batches. This replays the simulator with alrank's
``badge`` and with scikit-activeml's ``Badge`` (same features, model and seed sets; only
the stream of random draws changes between ``--streams``) and prints each run's area under
the accuracy curve: the spread between streams of one implementation is the noise any
gap between the two implementations must exceed.

Usage: ``python bench/badge_draws.py [--dataset sst2] [--vectorizer wordllama] [--streams 1,2]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _peers import skal_badge  # noqa: E402

from workers.simulation.data import featurise, load_dataset  # noqa: E402
from workers.simulation.engine import run_one  # noqa: E402
from workers.simulation.report import normalised_auc  # noqa: E402
from workers.simulation.spec import Point, Settings  # noqa: E402
from workers.strategies.badge import badge  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def area(points: list[Point]) -> float:
    return normalised_auc([p.labels for p in points], [p.accuracy for p in points])


def alrank_badge(stream: int):
    def pick(model, xp, xl, yl, k, rng):
        draws = np.random.default_rng([stream, int(rng.integers(1 << 31))])
        return badge(model.predict_proba(xp), xp, k, random_state=draws).indices

    return pick


def skactiveml_badge(stream: int):
    def pick(model, xp, xl, yl, k, rng):
        return skal_badge(model, xp, xl, yl, k, np.random.default_rng([stream, int(rng.integers(1 << 31))]))

    return pick


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sst2")
    ap.add_argument("--vectorizer", default="wordllama")
    ap.add_argument("--streams", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    train = load_dataset(DATASETS / args.dataset / "train.jsonl.gz")
    test = load_dataset(DATASETS / args.dataset / "test.jsonl.gz")
    x, x_test = featurise(train, test, args.vectorizer)
    settings = Settings(strategies=["badge"], repeats=args.repeats, vectorizer=args.vectorizer, loop="seeded")
    print(f"{args.dataset}, {args.vectorizer}: AUC per repeat (seed 20, batch 25, budget 1000)")
    for name, make in (("alrank badge", alrank_badge), ("skactiveml Badge", skactiveml_badge)):
        for stream in (int(s) for s in args.streams.split(",")):
            picker = make(stream)
            aucs = [
                area(run_one("badge", r, x, train.labels, x_test, test.labels, settings, picker=picker))
                for r in range(args.repeats)
            ]
            per_repeat = np.round(aucs, 3).tolist()
            print(f"{name}, stream {stream}: {per_repeat} mean {np.mean(aucs):.3f}", flush=True)


if __name__ == "__main__":
    main()
