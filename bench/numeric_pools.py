"""Numeric pools built on this machine, in the shared data sets' format, for the benchmarks.

- ``digits``: scikit-learn's bundled handwritten digits (1,797 images of 8 x 8 pixels,
  64 features from 0 to 16, 10 classes), split 75/25 with a fixed seed.
- ``covertype_like``: a synthetic pool shaped like the UCI forest cover-type set: ten
  continuous measurements on very different scales (elevation in metres, aspect in
  degrees, distances up to thousands of metres, hill shade 0-255), four one-hot
  wilderness areas and forty one-hot soil types, seven classes of unequal size. A class's
  score is quadratic in the measurements (elevation bands, aspect through its sine and
  cosine, products of distances), so the boundaries between classes are curved and no
  linear model separates them; 3% of labels are flipped at random.
- ``letter_like``: shaped like the UCI letter-recognition set (16 integer features from 0
  to 15, 26 classes, 16,000 items): scikit-learn's ``make_classification`` with two
  clusters per class, so each class is two blobs and a linear model reaches about 0.7
  where a non-linear one reaches 0.95.

``folder(name)`` builds one on first use in ``bench/out/datasets/<name>/{train,test}.jsonl.gz``
(``--write-only`` builds them all and stops).

Run as a script, it measures what the default model (``auto``) and the default strategy
reach on these pools and on the shared ``adult``, against a team that labels at random:

- **default**: the served loop (the service's own refresh, evaluation sample and
  exploration share included; ``workers.simulation.served``) with every default, at
  ``--labels`` labels, measured on the test split;
- **passive**: logistic regression, a random forest, extra trees, histogram gradient
  boosting and ``auto`` itself, each trained on ``--labels`` labels drawn at random from the
  same pool, measured on the same test split.

Each arm is repeated ``--repeats`` times; the table gives medians and the range across
repeats. "Beyond the spread" means the default's worst repeat is above the other arm's best.

Usage: ``python bench/numeric_pools.py [--pools adult,covertype_like,letter_like,digits]
[--labels 1000] [--repeats 5] [--jobs 2] [--set KEY=VALUE ...] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "datasets"
SHARED = ROOT.parent / "shared" / "datasets"
PASSIVE = ("logistic_regression", "random_forest", "extra_trees", "hist_gradient_boosting", "auto")
SEED = 20260


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.float64), np.array([str(v) for v in y])


def covertype_like(n: int = 16_000, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    elevation = rng.normal(2960, 280, n)
    aspect = rng.uniform(0, 360, n)
    slope = rng.gamma(3.0, 4.5, n)
    h_hydro = rng.gamma(2.0, 130, n)
    v_hydro = rng.normal(45, 58, n)
    h_road = rng.gamma(1.6, 1500, n)
    shade_9 = np.clip(rng.normal(212, 27, n), 0, 255)
    shade_noon = np.clip(rng.normal(223, 20, n), 0, 255)
    shade_3 = np.clip(shade_9 * 0.3 + rng.normal(80, 38, n), 0, 255)
    h_fire = rng.gamma(1.8, 1100, n)
    continuous = np.column_stack(
        [elevation, aspect, slope, h_hydro, v_hydro, h_road, shade_9, shade_noon, shade_3, h_fire]
    )
    # wilderness follows elevation; soil follows wilderness and slope
    wild_logits = np.column_stack([(elevation - 2900) / 150 * s for s in (1.0, -0.6, 0.4, -1.2)])
    wilderness = _draw(rng, wild_logits)
    soil_logits = rng.normal(0, 1.2, (4, 40))[wilderness] + np.outer(slope / 20, rng.normal(0, 1, 40))
    soil = _draw(rng, soil_logits)

    z = (continuous - continuous.mean(axis=0)) / continuous.std(axis=0)
    a = np.deg2rad(aspect)
    # each class's score: its own elevation band (a quadratic bump), aspect and distances
    centres = np.array([-1.6, -0.9, -0.3, 0.2, 0.7, 1.2, 1.8])
    scores = -2.2 * (z[:, [0]] - centres[None, :]) ** 2
    mix = rng.normal(0, 0.9, (7, 6))
    curved = np.column_stack(
        [np.sin(a), np.cos(a), z[:, 2] ** 2, z[:, 3] * z[:, 5], z[:, 9] ** 2 - 1, z[:, 4] * z[:, 6]]
    )
    scores += curved @ mix.T
    scores += rng.normal(0, 0.8, (40, 7))[soil] + rng.normal(0, 0.5, (4, 7))[wilderness]
    scores += np.log([0.30, 0.30, 0.12, 0.08, 0.08, 0.07, 0.05])
    labels = scores.argmax(axis=1)
    flip = rng.random(n) < 0.03
    labels[flip] = rng.integers(0, 7, int(flip.sum()))
    x = np.column_stack([continuous, np.eye(4)[wilderness], np.eye(40)[soil]])
    names = np.array(["spruce", "lodgepole", "ponderosa", "willow", "aspen", "douglas", "krummholz"])
    return x, names[labels]


def letter_like(n: int = 16_000, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n,
        n_features=16,
        n_informative=14,
        n_redundant=2,
        n_classes=26,
        n_clusters_per_class=2,
        class_sep=3.0,
        flip_y=0.01,
        random_state=seed,
    )
    low, high = np.percentile(x, 1, axis=0), np.percentile(x, 99, axis=0)
    x = np.round(np.clip((x - low) / (high - low) * 15, 0, 15))
    return x, np.array([chr(ord("A") + int(v)) for v in y])


def _draw(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


POOLS = {"digits": digits, "covertype_like": covertype_like, "letter_like": letter_like}


def write(name: str, out: Path = OUT) -> Path:
    x, y = POOLS[name]()
    order = np.random.default_rng(SEED).permutation(len(y))
    n_test = len(y) // 4
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("test", order[:n_test]), ("train", order[n_test:])):
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for i in rows:
                features = [round(float(v), 4) for v in x[i]]
                f.write(json.dumps({"id": f"{name}-{i}", "features": features, "label": str(y[i])}) + "\n")
    return folder


def folder(name: str, out: Path = OUT) -> Path:
    """The folder holding ``name``'s splits, written on first use."""
    path = out / name
    if not (path / "train.jsonl.gz").exists() or not (path / "test.jsonl.gz").exists():
        write(name, out)
    return path


def splits(name: str):
    """(train, test) of a built pool or a shared set."""
    sys.path.insert(0, str(ROOT))
    from workers.simulation.data import load_dataset

    where = folder(name) if name in POOLS else SHARED / name
    return load_dataset(where / "train.jsonl.gz"), load_dataset(where / "test.jsonl.gz")


def passive(name: str, kind: str, labels: int, repeat: int) -> dict:
    """``kind`` trained on ``labels`` random labels of the pool, measured on the test split."""
    from threadpoolctl import threadpool_limits

    from workers.models import train_single_label
    from workers.simulation.data import featurise

    train, test = splits(name)
    x, x_test = featurise(train, test)
    rows = np.random.default_rng([SEED, repeat]).choice(len(train), labels, replace=False)
    started = time.perf_counter()
    with threadpool_limits(1):
        model = train_single_label(x[rows], [train.labels[i] for i in rows], repeat, kind)
        predicted = np.array(model.classes)[model.predict_proba(x_test).argmax(axis=1)]
    return {
        "accuracy": float(np.mean(predicted == np.array(test.labels))),
        "kind": model.kind,
        "seconds": time.perf_counter() - started,
    }


def served(name: str, labels: int, repeat: int, params: dict | None = None, strategy: str = "") -> dict:
    """The served loop with every default but ``params`` (project settings) and ``strategy``
    (the default strategy when empty), up to ``labels`` labels."""
    from threadpoolctl import threadpool_limits

    from workers import defaults
    from workers.simulation.engine import run_served
    from workers.simulation.spec import Settings

    train, test = splits(name)
    strategy = strategy or defaults.QUERY_STRATEGY
    settings = Settings([strategy], budget=labels, gain_every=0, params=dict(params or {}))
    started = time.perf_counter()
    with threadpool_limits(1):
        points = run_served(strategy, repeat, train, test, settings)
    last = points[-1]
    return {"accuracy": last.accuracy, "labels": last.labels, "seconds": time.perf_counter() - started}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def compare(
    pools: list[str], labels: int, repeats: int, jobs: int, params: dict | None = None, strategy: str = ""
) -> list[dict]:
    """Every pool's arms, run ``jobs`` at a time; a row per pool."""
    for name in pools:
        if name in POOLS:
            folder(name)  # built once, before the processes read it
    with ProcessPoolExecutor(jobs) as ex:
        runs = {
            (name, "default", r): ex.submit(served, name, labels, r, params, strategy)
            for name in pools
            for r in range(repeats)
        }
        runs |= {
            (name, kind, r): ex.submit(passive, name, kind, labels, r)
            for name in pools
            for kind in PASSIVE
            for r in range(repeats)
        }
        done = {key: run.result() for key, run in runs.items()}
    rows = []
    for name in pools:
        arm = {k: [done[(name, k, r)]["accuracy"] for r in range(repeats)] for k in ("default", *PASSIVE)}
        best = max(PASSIVE[:4], key=lambda k: statistics.median(arm[k]))
        rows.append(
            {
                "pool": name,
                "arms": arm,
                "best_passive": best,
                "auto_chose": sorted({done[(name, "auto", r)]["kind"] for r in range(repeats)}),
                "beats_best": min(arm["default"]) > max(arm[best]),
                "beats_random_same_model": min(arm["default"]) > max(arm["auto"]),
                "default_seconds": statistics.median(
                    done[(name, "default", r)]["seconds"] for r in range(repeats)
                ),
            }
        )
    return rows


def table(rows: list[dict], labels: int, repeats: int) -> str:
    head = (
        f"| pool | default, served loop | best at random ({labels} labels) | auto at random | "
        f"LR / RF / ET / HGB at random | beyond the spread |\n|---|---|---|---|---|---|"
    )
    lines = [head]
    for row in rows:
        arm = row["arms"]
        verdict = f"best: {'yes' if row['beats_best'] else 'no'}; same model: "
        verdict += "yes" if row["beats_random_same_model"] else "no"
        medians = " / ".join(f"{statistics.median(arm[k]):.3f}" for k in PASSIVE[:4])
        best = row["best_passive"]
        chose = ", ".join(row["auto_chose"])
        lines.append(
            f"| {row['pool']} | {spread(arm['default'])} | {best} {spread(arm[best])} "
            f"| {spread(arm['auto'])} ({chose}) | {medians} | {verdict} |"
        )
    lines.append(f"\nMedian [range] of test accuracy over {repeats} repeats.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pools", default="adult,covertype_like,letter_like,digits")
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--markdown", default="")
    ap.add_argument("--strategy", default="", help="the served arm's strategy (default: the service's)")
    ap.add_argument("--write-only", action="store_true", help="build the pools and stop")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a project setting for the served arm (JSON value), e.g. random_sample_percent=0.1",
    )
    args = ap.parse_args()
    if args.write_only:
        for name in POOLS:
            print(f"{name}: {write(name, Path(args.out))}")
        return
    started = time.perf_counter()
    pools = [p for p in args.pools.split(",") if p]
    params = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = compare(pools, args.labels, args.repeats, args.jobs, params, args.strategy)
    text = table(rows, args.labels, args.repeats)
    text += f"\n{time.perf_counter() - started:.0f} s in all; the default's served loop took (median) "
    text += ", ".join(f"{r['pool']} {r['default_seconds']:.0f} s" for r in rows) + "."
    if params or args.strategy:
        shown = {**params, "query_strategy": args.strategy or "default"}
        text += f"\nServed arm's settings: {json.dumps(shown)}."
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
