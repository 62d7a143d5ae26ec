"""Label efficiency as users get it: the served loop, over HTTP and replayed.

For each shared text set and each repeat (a random 90% of the train split as the pool), it
runs:

1. **the service over HTTP** (``alrank serve``, default settings unless ``--al`` says
   otherwise): create a project, upload the pool, wait for the cold start, then ask for a
   batch, label what was handed out with the true labels, and after each retrain measure
   the serving model on the test split through ``POST .../predict``;
2. **the simulator's served replay** (``workers.simulation.served``) of the same pool and
   settings; and the same replay with ``query_strategy: random``, the baseline;
3. **labels that outlive the model**: models the service did not choose with, trained on
   the first k labels the service collected and on k labels drawn at random from the pool:
   scikit-learn's TF-IDF + logistic regression (defaults), and logistic regression on a
   different embedding (MiniLM where its weights are installed; otherwise character
   n-gram TF-IDF, which shares no columns with the service's word features).

Printed: the learning curves (median and min-max over repeats) of HTTP and replay, and
whether they agree (the same batches and accuracies, or within the spread across repeats);
the area under each curve against random; classes covered by the first 50 and 100 labels;
and the outside models' accuracy on served against random labels.

Usage: ``python bench/served_loop.py [--datasets sms_spam,trec,sst2,ag_news] [--repeats 5]
[--budget 1000] [--batch 25] [--al '{"random_sample_percent": 0.2}'] [--no-http]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from alrank.client import Client, chunked  # noqa: E402
from workers.simulation.report import normalised_auc  # noqa: E402
from workers.simulation.served import ServedPoint, ServedPool, replay  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
CHECKPOINTS = (50, 100, 200, 300, 500, 700, 1000)
SCHEMA = "label"
ANNOTATOR = "replay"


def read(name: str, split: str) -> list[dict]:
    with gzip.open(DATASETS / name / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def make_pool(rows: list[dict], repeat: int, seed: int, share: float = 0.9) -> ServedPool:
    """A random ``share`` of the train rows (the repeat's pool), ids in file order."""
    rng = np.random.default_rng([seed, repeat])
    keep = np.sort(rng.choice(len(rows), int(share * len(rows)), replace=False))
    ids = [f"{k:06d}" for k in keep]
    return ServedPool(
        ids,
        [rows[k]["text"] for k in keep],
        None,
        {i: rows[k]["label"] for i, k in zip(ids, keep, strict=True)},
    )


def http_replay(
    client: Client,
    name: str,
    pool: ServedPool,
    test_texts: list[str],
    test_labels: list[str],
    al: dict,
    batch_size: int,
    budget: int,
    test_vectors: list | None = None,
) -> tuple[list[ServedPoint], int]:
    """The served loop over HTTP, as an annotation tool runs it; returns the points and the
    requests the pool was uploaded in. Items are sent with their text, their vector, or
    both, as the pool (and ``test_vectors``) have them."""
    labels = sorted(set(pool.truth.values()))
    client.create_project(
        {"name": name, "schemas": [{"name": SCHEMA, "labels": labels}], "active_learning": al}
    )
    vectors = pool.vectors.tolist() if pool.vectors is not None else [None] * len(pool.ids)
    records = [{"id": i, **item(t, v)} for i, t, v in zip(pool.ids, pool.texts, vectors, strict=True)]
    tests = [item(t, v) for t, v in zip(test_texts, test_vectors or [None] * len(test_texts), strict=True)]
    uploads = len(list(chunked(records)))
    client.upload_items(name, records)
    wait_for(client, name, lambda r: r["ranking_id"] and r["pool_size"] == len(pool.ids))
    labelled: list[str] = []
    points: list[ServedPoint] = []
    version = None
    while len(labelled) < budget:
        batch = client.next(name, SCHEMA, ANNOTATOR, min(batch_size, budget - len(labelled)))
        items = [it["id"] for it in batch["items"]]
        if not items:
            break
        sent = [{"item": i, "schema": SCHEMA, "value": pool.truth[i], "annotator": ANNOTATOR} for i in items]
        jobs = client.push_labels(name, sent)["training_jobs"]
        labelled += [i for i in items if i not in labelled]
        if SCHEMA in jobs:
            client.wait(jobs[SCHEMA], every=0.05)
            count = len(labelled)
            ranking = wait_for(client, name, lambda r, n=count: r["labelled"] == n)
            if ranking["model_version"] is not None and ranking["model_version"] != version:
                version = ranking["model_version"]
                predicted = client.predict(name, SCHEMA, tests)
                acc, f1 = scores(test_labels, [p["label"] for p in predicted])
                points.append(ServedPoint(len(labelled), acc, f1, version, list(labelled)))
    client.delete_project(name)
    return points, uploads


def item(text: str, vector) -> dict:
    """An item's body: its text where it has one, its vector where it has one."""
    return {**({"text": text} if text else {}), **({"vector": list(vector)} if vector is not None else {})}


def wait_for(client: Client, name: str, ready, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ranking = client.ranking(name, SCHEMA, 1)
        if ready(ranking):
            return ranking
        time.sleep(0.05)
    raise TimeoutError(f"project {name}: no such ranking after {timeout:.0f} s")


def scores(truth: list[str], predicted: list[str]) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(truth, predicted)), float(f1_score(truth, predicted, average="macro"))


def at(points: list[ServedPoint], labels: int) -> float | None:
    """The serving model's accuracy once ``labels`` labels were in (the last retrain before)."""
    before = [p for p in points if p.labels <= labels]
    return before[-1].accuracy if before else None


def curve_auc(points: list[ServedPoint], upto: int) -> float:
    mine = [p for p in points if p.labels <= upto]
    return normalised_auc([p.labels for p in mine], [p.accuracy for p in mine]) if mine else float("nan")


def fmt(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    return f"{statistics.median(got):.3f} ({min(got):.3f}-{max(got):.3f})"


class OutsideModels:
    """Models the service did not choose with, fitted on given pool items' labels."""

    def __init__(self, pool_texts: list[str], test_texts: list[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        from workers import minilm

        words = TfidfVectorizer().fit(pool_texts + test_texts)
        self.views = {"tfidf+lr": (words.transform(pool_texts), words.transform(test_texts))}
        if minilm.available():
            from workers.features import EMBEDDINGS

            emb = EMBEDDINGS["minilm"](pool_texts + test_texts)
            self.views["minilm+lr"] = (emb[: len(pool_texts)], emb[len(pool_texts) :])
        else:
            chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(pool_texts + test_texts)
            self.views["chars+lr"] = (chars.transform(pool_texts), chars.transform(test_texts))

    def accuracy(self, view: str, rows: list[int], labels: list[str], test_labels: list[str]) -> float:
        from sklearn.linear_model import LogisticRegression

        x, x_test = self.views[view]
        if len(set(labels)) < 2:
            return float(np.mean([t == labels[0] for t in test_labels]))
        model = LogisticRegression(max_iter=1000).fit(x[rows], labels)
        return float(np.mean(model.predict(x_test) == np.array(test_labels)))


def run_dataset(name: str, args, client: Client | None) -> dict:
    train, test = read(name, "train"), read(name, "test")
    test_texts = [r["text"] for r in test]
    test_labels = [r["label"] for r in test]
    al = json.loads(args.al)
    out: dict = {"served": [], "http": [], "random": [], "uploads": [], "outside": [], "agree": []}
    for repeat in range(args.repeats):
        pool = make_pool(train, repeat, args.seed)
        started = time.monotonic()
        http = None
        uploads = len(
            list(chunked([{"id": i, "text": t} for i, t in zip(pool.ids, pool.texts, strict=True)]))
        )
        if client is not None:
            http, uploads = http_replay(
                client,
                f"served-{name}-{repeat}".replace("_", "-"),
                pool,
                test_texts,
                test_labels,
                al,
                args.batch,
                args.budget,
            )
        http_seconds = time.monotonic() - started
        started = time.monotonic()
        served = replay(pool, test_texts, None, test_labels, al, args.batch, args.budget, uploads)
        sim_seconds = time.monotonic() - started
        rand = replay(
            pool,
            test_texts,
            None,
            test_labels,
            {**al, "query_strategy": "random"},
            args.batch,
            args.budget,
            uploads,
        )
        out["served"].append(served)
        out["random"].append(rand)
        if http is not None:
            out["http"].append(http)
            same = [(p.labels, p.accuracy, p.labelled_ids) for p in http] == [
                (p.labels, p.accuracy, p.labelled_ids) for p in served
            ]
            out["agree"].append(same)
        # labels that outlive the model
        index = {item: k for k, item in enumerate(pool.ids)}
        outside = OutsideModels(pool.texts, test_texts)
        rng = np.random.default_rng([args.seed, repeat, 1])
        order = served[-1].labelled_ids if served else []
        rows_random = rng.permutation(len(pool.ids))
        per: dict = {}
        for view in outside.views:
            for k in (c for c in CHECKPOINTS if c <= len(order) and c >= 100):
                chosen = [index[i] for i in order[:k]]
                drawn = rows_random[:k].tolist()
                per[(view, k)] = (
                    outside.accuracy(view, chosen, [pool.truth[pool.ids[r]] for r in chosen], test_labels),
                    outside.accuracy(view, drawn, [pool.truth[pool.ids[r]] for r in drawn], test_labels),
                )
        out["outside"].append(per)
        print(
            f"  {name} repeat {repeat}: HTTP {http_seconds:.0f} s, replay {sim_seconds:.0f} s"
            + (f", same batches and accuracies: {out['agree'][-1]}" if http is not None else ""),
            file=sys.stderr,
            flush=True,
        )
    out["classes"] = sorted({r["label"] for r in train})
    out["coverage"] = {
        arm: {
            k: [
                len({pool_truth_label(train, i) for i in pts[-1].labelled_ids[:k]}) if pts else 0
                for pts in out[arm]
            ]
            for k in (50, 100)
        }
        for arm in ("served", "random")
    }
    return out


def pool_truth_label(train: list[dict], item: str) -> str:
    return train[int(item)]["label"]


def report(name: str, r: dict, budget: int) -> None:
    print(f"\n### {name}\n")
    arms = [
        ("served over HTTP", r["http"]),
        ("served, replayed", r["served"]),
        ("random, replayed", r["random"]),
    ]
    arms = [(a, pts) for a, pts in arms if pts]
    print("| labels | " + " | ".join(a for a, _ in arms) + " |")
    print("|---|" + "---|" * len(arms))
    for k in (c for c in CHECKPOINTS if c <= budget):
        print(f"| {k} | " + " | ".join(fmt([at(p, k) for p in pts]) for _, pts in arms) + " |")
    print(
        "| area under the curve | "
        + " | ".join(fmt([curve_auc(p, budget) for p in pts]) for _, pts in arms)
        + " |"
    )
    print(
        "| area, first 200 labels | "
        + " | ".join(fmt([curve_auc(p, 200) for p in pts]) for _, pts in arms)
        + " |"
    )
    if r["agree"]:
        print(
            "\nHTTP and replay gave the same batches and accuracies in "
            f"{sum(r['agree'])} of {len(r['agree'])} repeats."
        )
    n = len(r["classes"])
    for arm in ("served", "random"):
        cov = r["coverage"][arm]
        print(
            f"- {arm}: classes covered by the first 50 labels {fmt([float(v) for v in cov[50]])}, "
            f"by the first 100 {fmt([float(v) for v in cov[100]])} (of {n})"
        )
    views = sorted({v for per in r["outside"] for v, _ in per})
    print("\n| outside model | labels | on served labels | on random labels | served - random (median) |")
    print("|---|---|---|---|---|")
    for view in views:
        for k in sorted({k for per in r["outside"] for v, k in per if v == view}):
            pairs = [per[(view, k)] for per in r["outside"] if (view, k) in per]
            diff = statistics.median(a - b for a, b in pairs)
            print(
                f"| {view} | {k} | {fmt([a for a, _ in pairs])} "
                f"| {fmt([b for _, b in pairs])} | {diff:+.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="sms_spam,trec,sst2,ag_news")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--al", default="{}", help="the project's active_learning settings, as JSON")
    parser.add_argument("--no-http", action="store_true", help="the replays only")
    parser.add_argument("--json", help="write every point here")
    args = parser.parse_args()
    results = {}
    serve = None
    tmp = tempfile.TemporaryDirectory()
    try:
        client = None
        if not args.no_http:
            from procs import Serve

            serve = Serve(Path(tmp.name) / "data")
            client = Client(serve.base, serve.admin_key)
        for name in args.datasets.split(","):
            results[name] = run_dataset(name, args, client)
            report(name, results[name], args.budget)
    finally:
        if serve is not None:
            serve.close()
        tmp.cleanup()
    if args.json:
        dump = {
            name: {arm: [[asdict(p) for p in pts] for pts in r[arm]] for arm in ("served", "http", "random")}
            for name, r in results.items()
        }
        Path(args.json).write_text(json.dumps(dump), encoding="utf-8")


if __name__ == "__main__":
    main()
