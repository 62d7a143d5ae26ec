"""Label quality through the service over HTTP: noisy annotators, label issues, review and
the planted random annotator.

A team of simulated annotators works a project of ``alrank serve`` as a labelling tool
would: each in turn asks ``GET .../next`` for a batch, answers every item and sends the
answers (``source: review`` or ``overlap`` where the batch said so). After each retrain
trigger the bench waits for the new ranking, so every arm sees the same sequence of
models. At the budget (labels given, second opinions included), the serving model is
measured on the test split through ``POST .../predict``.

Arms, each repeated on a random 90% of the train split:

- **clean**: three annotators who always answer right;
- **noise p**: the same three, each answer flipped to another class, uniformly, with
  probability p (10% and 20%);
- **noise p + review**: the same, with ``review_share`` on: the worst label issues go to
  another annotator of the team (as noisy), whose answer decides a one-to-one tie;
- **random annotator**: three annotators at 10% noise and one who answers uniformly at
  random, with ``overlap_share`` and ``resolution_strategy: dawid_skene``: is the random
  one the least reliable in the estimate?

Printed per set: accuracy at the budget per arm (median and range over repeats); what the
noise cost and what review recovered; the precision and recall of the label issues at the
top 5% and 10% of the labels (of the noise-only arms, against the labels the bench
flipped); and each annotator's estimated reliability in the random-annotator arm.

Usage: ``python bench/label_quality.py [--datasets trec,sst2] [--repeats 5] [--budget 1000]
[--review-share 0.2] [--review-min-score 0.9] [--arms "clean,noise 20%,noise 20% + review"] [--markdown FILE]
[--json FILE]``; ``--table FILE`` prints the tables of
a saved ``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from served_loop import SCHEMA, make_pool, read, scores, wait_for  # noqa: E402

from alrank.client import Client  # noqa: E402
from workers.aggregation import resolve  # noqa: E402

TEAM = ("ann1", "ann2", "ann3")
RANDOM = "random"
BATCH = 10


def arms(review_share: float, review_min_score: float | None) -> dict[str, dict]:
    """Each arm: the team's noise, its annotators and the project's settings (the service's
    ``review_min_score`` unless one is given)."""
    review: dict = {"review_share": review_share}
    if review_min_score is not None:
        review["review_min_score"] = review_min_score
    return {
        "clean": {"noise": 0.0, "team": TEAM, "al": {}},
        "noise 10%": {"noise": 0.1, "team": TEAM, "al": {}},
        "noise 10% + review": {"noise": 0.1, "team": TEAM, "al": review},
        "noise 20%": {"noise": 0.2, "team": TEAM, "al": {}},
        "noise 20% + review": {"noise": 0.2, "team": TEAM, "al": review},
        "random annotator": {
            "noise": 0.1,
            "team": (*TEAM, RANDOM),
            "al": {"overlap_share": 0.2, "resolution_strategy": "dawid_skene"},
        },
    }


def answer(truth: str, who: str, noise: float, labels: list[str], rng: np.random.Generator) -> str:
    if who == RANDOM:
        return labels[int(rng.integers(len(labels)))]
    if rng.random() < noise:
        return labels[int(rng.choice([k for k, lab in enumerate(labels) if lab != truth]))]
    return truth


def run_arm(client: Client, name: str, arm: dict, pool, tests, test_labels, budget: int, seed: int) -> dict:
    """One arm's project, labelled to ``budget`` answers; its figures."""
    labels = sorted(set(pool.truth.values()))
    rng = np.random.default_rng(seed)
    client.create_project(
        {"name": name, "schemas": [{"name": SCHEMA, "labels": labels}], "active_learning": arm["al"]}
    )
    client.upload_items(name, [{"id": i, "text": t} for i, t in zip(pool.ids, pool.texts, strict=True)])
    wait_for(client, name, lambda r: r["ranking_id"] and r["pool_size"] == len(pool.ids))
    given: dict[tuple[str, str], str] = {}
    sources: dict[str, int] = {}
    reviewed: list[str] = []
    turn = 0
    while len(given) < budget:
        who = arm["team"][turn % len(arm["team"])]
        turn += 1
        batch = client.next(name, SCHEMA, who, min(BATCH, budget - len(given)))["items"]
        if not batch:
            continue
        sent = []
        for it in batch:
            value = answer(pool.truth[it["id"]], who, arm["noise"], labels, rng)
            source = it["source"] if it["source"] in ("review", "overlap") else None
            sent.append(
                {"item": it["id"], "schema": SCHEMA, "value": value, "annotator": who, "source": source}
            )
            given[(it["id"], who)] = value
            sources[it["source"]] = sources.get(it["source"], 0) + 1
            if it["source"] == "review":
                reviewed.append(it["id"])
        jobs = client.push_labels(name, sent)["training_jobs"]
        if SCHEMA in jobs:
            client.wait(jobs[SCHEMA], every=0.05)
    job = client.train(name, SCHEMA)  # the last labels, assessed too
    client.wait(job["job"], every=0.05)
    predicted = client.predict(name, SCHEMA, tests)
    accuracy, _ = scores(test_labels, [p["label"] for p in predicted])
    issues = client.label_issues(name, SCHEMA, 1000)
    metrics = client.metrics(name, SCHEMA)
    client.delete_project(name)
    return {
        "accuracy": accuracy,
        "sources": sources,
        "issues": issues,
        "reliability": {
            a: r.get("reliability")
            for a, r in ((metrics.get("agreement") or {}).get("per_annotator") or {}).items()
        },
        # in the arms with one annotator per item: the labels the noise made wrong
        "wrong": sorted({i for (i, _), v in given.items() if v != pool.truth[i]}),
        "accounting": accounting(given, reviewed, pool.truth, labels, arm["al"]),
    }


def accounting(given: dict[tuple[str, str], str], reviewed: list[str], truth, labels, al: dict) -> dict:
    """Where the budget went and what the model learnt at the end: items labelled, answers
    given in review (and how many of them were to a first label that was wrong), and the
    training labels (under the project's aggregation rule) that are wrong."""
    votes: dict[str, dict[str, str]] = {}
    order: dict[str, dict[str, float]] = {}
    for k, ((item, who), value) in enumerate(given.items()):
        votes.setdefault(item, {})[who] = value
        order.setdefault(item, {})[who] = float(k)
    trained = resolve(votes, labels, False, al.get("resolution_strategy", "majority_vote"), times=order)
    first = {item: next(iter(by.values())) for item, by in votes.items()}
    return {
        "items": len(votes),
        "reviews": len(reviewed),
        "reviews_of_wrong": sum(1 for i in reviewed if first[i] != truth[i]),
        "first_wrong": sum(1 for i, v in first.items() if v != truth[i]),
        "trained_wrong": sum(1 for i, v in trained.items() if v is not None and v != truth[i]),
    }


def precision_recall(result: dict, share: float) -> tuple[float, float, int]:
    """Precision and recall, against the labels that are wrong, of the worst ``share`` of
    the labels checked (or all flagged, if fewer)."""
    issues = result["issues"]
    wrong = set(result["wrong"])
    top = issues["issues"][: max(1, int(share * issues["checked"]))]
    hits = sum(1 for i in top if i["item"] in wrong)
    return hits / max(1, len(top)), hits / max(1, len(wrong)), len(top)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def run_dataset(name: str, args, client: Client) -> dict:
    train, test = read(name, "train"), read(name, "test")
    tests = [{"text": r["text"]} for r in test]
    test_labels = [r["label"] for r in test]
    out: dict[str, list[dict]] = {}
    chosen = arms(args.review_share, args.review_min_score)
    if args.arms:
        chosen = {k: chosen[k] for k in args.arms.split(",")}
    for arm_name, arm in chosen.items():
        for repeat in range(args.repeats):
            pool = make_pool(train, repeat, args.seed)
            started = time.perf_counter()
            project = f"lq-{name}-{arm_name.replace(' ', '-').replace('%', '').replace('+', 'r')}-{repeat}"
            result = run_arm(client, project, arm, pool, tests, test_labels, args.budget, args.seed + repeat)
            result["seconds"] = time.perf_counter() - started
            out.setdefault(arm_name, []).append(result)
            print(
                f"{name} {arm_name} #{repeat}: accuracy {result['accuracy']:.3f}, "
                f"{result['seconds']:.0f} s, sources {result['sources']}",
                flush=True,
            )
    return out


def table(name: str, runs: dict[str, list[dict]]) -> str:
    acc = {arm: [r["accuracy"] for r in rs] for arm, rs in runs.items()}
    lines = [f"### {name}", "", "| arm | accuracy at the budget |", "|---|---|"]
    lines += [f"| {arm} | {spread(v)} |" for arm, v in acc.items()]
    lines.append("")
    for p in ("10%", "20%"):
        if not {"clean", f"noise {p}", f"noise {p} + review"} <= acc.keys():
            continue
        clean, noisy, reviewed = (
            statistics.median(acc[k]) for k in ("clean", f"noise {p}", f"noise {p} + review")
        )
        cost, recovered = clean - noisy, reviewed - noisy
        beyond = min(acc[f"noise {p} + review"]) > max(acc[f"noise {p}"])
        share = recovered / cost if cost > 0 else float("nan")
        # the same pool in each repeat: review against no review, repeat by repeat
        paired = [a - b for a, b in zip(acc[f"noise {p} + review"], acc[f"noise {p}"], strict=True)]
        lines.append(
            f"- noise {p}: cost {cost:+.3f}; review recovered {recovered:+.3f} ({share:.0%} of the cost); "
            f"review beyond the spread of no review: {'yes' if beyond else 'no'}; paired by repeat, "
            f"review ahead in {sum(d > 0 for d in paired)} of {len(paired)} "
            f"(median {statistics.median(paired):+.3f})"
        )
    lines += [
        "",
        "| arm | items labelled | answers in review (to a wrong label) | first labels wrong "
        "| training labels wrong at the budget |",
        "|---|---|---|---|---|",
    ]
    for arm, rs in runs.items():
        if all("accounting" in r for r in rs):
            a = [r["accounting"] for r in rs]
            cells = [
                statistics.median(x[k] for x in a)
                for k in ("items", "reviews", "reviews_of_wrong", "first_wrong", "trained_wrong")
            ]
            items, reviews, of_wrong, first_wrong, trained_wrong = (f"{c:.0f}" for c in cells)
            lines.append(f"| {arm} | {items} | {reviews} ({of_wrong}) | {first_wrong} | {trained_wrong} |")
    lines += ["", "| arm | top | precision | recall | flagged |", "|---|---|---|---|---|"]
    for p in ("10%", "20%"):
        for share in (0.05, 0.10):
            if f"noise {p}" not in runs:
                continue
            found = [precision_recall(r, share) for r in runs[f"noise {p}"]]
            lines.append(
                f"| noise {p} | {share:.0%} | {spread([f[0] for f in found])} | "
                f"{spread([f[1] for f in found])} | {statistics.median(f[2] for f in found):.0f} |"
            )
    lines.append("")
    if "random annotator" not in runs:
        return "\n".join(lines)
    least = [
        min((v, a) for a, v in r["reliability"].items() if v is not None)[1] for r in runs["random annotator"]
    ]
    lines.append(
        f"- random annotator the least reliable in {sum(1 for a in least if a == RANDOM)} of {len(least)} "
        "repeats; reliability per repeat: "
        + "; ".join(
            ", ".join(f"{a} {v:.2f}" for a, v in sorted(r["reliability"].items()) if v is not None)
            for r in runs["random annotator"]
        )
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="trec,sst2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--review-share", type=float, default=0.2)
    parser.add_argument("--review-min-score", type=float, default=None, help="default: the service's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="", help="the arms to run, comma-separated (default: all)")
    parser.add_argument("--markdown", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--table", default="", help="print the tables of a --json file and stop")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        print("\n\n".join(table(name, runs) for name, runs in saved.items()))
        return
    from procs import Serve

    tmp = tempfile.TemporaryDirectory()
    serve = Serve(Path(tmp.name) / "data")
    started = time.perf_counter()
    results: dict[str, dict] = {}
    try:
        client = Client(serve.base, serve.admin_key)
        for name in args.datasets.split(","):
            results[name] = run_dataset(name, args, client)
            # each set's table as soon as it is done: a long run shows what it has
            text = "\n\n".join(table(n, runs) for n, runs in results.items())
            text += f"\n\n{time.perf_counter() - started:.0f} s in all; budget {args.budget} labels, "
            minimum = "the default" if args.review_min_score is None else args.review_min_score
            text += f"review_share {args.review_share}, review_min_score {minimum}, "
            text += f"{args.repeats} repeats."
            print(text, flush=True)
            if args.markdown:
                Path(args.markdown).write_text(text + "\n")
            if args.json:
                Path(args.json).write_text(json.dumps(results))
    finally:
        serve.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
