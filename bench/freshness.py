"""Fresh rankings: from the label that triggers a retrain to the new ranking being served.

Starts ``alrank serve`` (embedded Valkey, two workers), and for each pool size and each
configuration creates a project, uploads real texts over HTTP and waits for the cold-start
ranking. Then, ``--repeats`` times, it does what an annotation tool does: asks for a batch
of ``update_frequency`` items, labels them in one request (which triggers a retrain), and
polls ``GET .../ranking`` until a ranking from the new model version is served. The time
counts from sending the labels to the first poll that sees the new version (polls every
50 ms). Printed per configuration: the median and the spread (min-max) over the repeats,
and the worker's own time for the job (``GET /v1/jobs/{id}``).

Configurations: the defaults of a plain install (``tfidf+wordllama`` features,
``diverse_uncertainty``), and the baseline measured in the same run: word TF-IDF with
uncertainty sampling by margin (the default measure), the cheapest ranking alrank has.

Pools: the shared sets' train texts, AG News first, then SST-2 (GLUE), 20 Newsgroups, TREC,
SST-2 and SMS spam, cut to each size; the label is the set and its class.

Usage: ``python bench/freshness.py [--sizes 10000,100000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from procs import Serve, wait_until  # noqa: E402

from alrank.client import Client  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
SETS = ("ag_news", "sst2_glue", "20newsgroups", "trec", "sst2", "sms_spam")
CONFIGS = (
    ("tfidf+wordllama", "diverse_uncertainty"),
    ("tfidf", "uncertainty"),
)


def pool(size: int) -> list[dict]:
    """``size`` real texts with their labels."""
    rows: list[dict] = []
    for name in SETS:
        with gzip.open(DATASETS / name / "train.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                rows.append({"id": f"{name}-{len(rows)}", "text": r["text"], "label": f"{name}:{r['label']}"})
                if len(rows) == size:
                    return rows
    raise SystemExit(f"the shared sets hold only {len(rows)} texts")


def run(client: Client, rows: list[dict], vectorizer: str, strategy: str, repeats: int) -> dict:
    name = f"fresh-{len(rows)}-{vectorizer.replace('+', '-')}-{strategy}".replace("_", "-")
    labels = sorted({r["label"] for r in rows})
    truth = {r["id"]: r["label"] for r in rows}
    client.create_project(
        {
            "name": name,
            "schemas": [{"name": "topic", "labels": labels}],
            "active_learning": {"vectorizer_name": vectorizer, "query_strategy": strategy},
        }
    )
    started = time.monotonic()
    client.upload_items(name, ({"id": r["id"], "text": r["text"]} for r in rows))
    uploaded = time.monotonic() - started
    wait_until(lambda: client.ranking(name, "topic", 1)["ranking_id"], 1800, "the cold-start ranking")
    cold = time.monotonic() - started
    frequency = client.project(name)["active_learning"]["update_frequency"]
    served: list[float] = []
    worker: list[float] = []
    stages: list[dict] = []
    current = client.ranking(name, "topic", 1)["ranking_id"]
    while len(served) < repeats:
        batch = client.next(name, "topic", "ana", frequency)
        sent = time.monotonic()
        result = client.push_labels(
            name,
            [
                {"item": it["id"], "schema": "topic", "value": truth[it["id"]], "annotator": "ana"}
                for it in batch["items"]
            ],
        )
        job = result["training_jobs"].get("topic")
        if not job:
            continue
        ranking = wait_until(
            lambda seen=current: (r := client.ranking(name, "topic", 1))["ranking_id"] != seen and r,
            600,
            "a new ranking",
            every=0.05,
        )
        took = time.monotonic() - sent
        current = ranking["ranking_id"]
        # counted once a model ranks: the first ones also fit the model's first features
        if ranking["model_version"] is not None and ranking["model_version"] > 1:
            served.append(took)
            result = client.wait(job, every=0.05)["result"] or {}
            worker.append(float(result.get("seconds", "nan")))
            stages.append(result.get("stage_seconds") or {})
    client.delete_project(name)
    return {"upload": uploaded, "cold_start": cold, "served": served, "worker": worker, "stages": stages}


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--configs",
        default=",".join(f"{v}/{s}" for v, s in CONFIGS),
        help="features/strategy pairs, comma-separated",
    )
    args = parser.parse_args()
    configs = [tuple(c.split("/")) for c in args.configs.split(",")]
    print(
        "| items | features | strategy | label to new ranking served: median (min-max) "
        "| worker's job | upload | first ranking served |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        serve = Serve(Path(tmp) / "data")
        try:
            client = Client(serve.base, serve.admin_key)
            for size in (int(s) for s in args.sizes.split(",")):
                rows = pool(size)
                for vectorizer, strategy in configs:
                    r = run(client, rows, vectorizer, strategy, args.repeats)
                    print(
                        f"| {size:,} | `{vectorizer}` | `{strategy}` | {spread(r['served'])} | "
                        f"{spread(r['worker'])} | {r['upload']:.1f} s | {r['cold_start']:.1f} s |",
                        flush=True,
                    )
                    names = list(dict.fromkeys(k for st in r["stages"] for k in st))
                    medians = ", ".join(
                        f"{k} {statistics.median(st.get(k, 0.0) for st in r['stages']):.2f}" for k in names
                    )
                    print(f"|   | worker's stages, median seconds: {medians} | | | | | |", flush=True)
        finally:
            serve.close()


if __name__ == "__main__":
    main()
