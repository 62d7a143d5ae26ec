"""A pool of a million items through ``alrank serve``, retrained again and again.

Starts ``alrank serve`` on a fresh data dir, uploads ``--items`` short synthetic texts of
12 words with ``alrank.client`` (10,000 a request, one at a time; the items are made before
the clock starts), then labels as an annotation tool does
(ask for a batch, label it) and waits after every ``update_frequency`` labels for the next
model version to be served by ``GET /next``. Prints:

- the upload rate;
- per retrain, the seconds from the label that triggered it to its model being served,
  with the job's own stages (``GET /v1/jobs/{id}``);
- Redis's memory per item (``INFO memory``: ``used_memory`` and the server's resident
  set) after the upload and after the last retrain, and the feature directory's size;
- the peak resident memory of each kind of process (the API, the workers and their work
  horses, Redis), sampled every 0.2 s, and the workers' during each retrain;
- that no acknowledged label was lost.

- with ``--workers 1,2``, one run per worker count and the speed-up of the model's pass
  over the pool, which a large pool splits into shards for the free workers
  (``workers.shards``), and of label to served model; with ``--vectors`` too, the same
  pass's arithmetic bare, in one process and forked into two (:func:`bare_pass`): what the
  cores give it, in the same run.

With ``--vectors D`` the items are ``D`` numbers each and no text (``--classifier
random_forest`` suits them), uploaded from a client that spends little on the JSON.

Usage: ``python bench/million.py [--items 1000000] [--retrains 10] [--vectorizer tfidf]
[--classifier logistic_regression] [--vectors D] [--workers 1,2]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np
import requests
from freshness import spread
from procs import FILLER, WORDS, Annotator, Serve, cmdline, descendants
from redis import Redis

from alrank.client import Client

LABELS = list(WORDS)

KINDS = (
    ("work horse", "rq:work-horse"),
    ("worker", "workers.worker"),
    ("Redis", "valkey"),
    ("API", "gunicorn"),
)

JOB_KINDS = ("work horse", "worker")

POLL_SECONDS = 0.2
"""How often :func:`follow` asks whether a retrain's model is served."""


def kind(pid: int) -> str | None:
    line = cmdline(pid)
    for name, word in KINDS:
        if word in line:
            return name
    return None


class PeakMemory(threading.Thread):
    """The largest resident set seen per kind of process, every 0.2 s."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[str, int] = {}
        self.window: dict[str, int] = {}
        """Peaks since :meth:`since_last` last read them."""
        self.done = threading.Event()

    def since_last(self) -> str:
        """The peaks since the last call, for the processes that ran jobs, and a new window."""
        seen, self.window = self.window, {}
        return ", ".join(f"{n} {b / 2**30:.2f} GiB" for n, b in sorted(seen.items()) if n in JOB_KINDS)

    def run(self) -> None:
        while not self.done.wait(0.2):
            for pid in descendants(self.root):
                name = kind(pid)
                if name is None:
                    continue
                try:
                    with open(f"/proc/{pid}/status", encoding="ascii") as f:
                        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
                except (OSError, StopIteration):
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss * 1024)
                self.window[name] = max(self.window.get(name, 0), rss * 1024)


def redis_memory(redis: Redis, items: int) -> str:
    info = redis.info("memory")
    return (
        f"used_memory {info['used_memory'] / items:.0f} B/item ({info['used_memory'] / 2**30:.2f} GiB), "
        f"server resident {info['used_memory_rss'] / items:.0f} B/item"
    )


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def follow(ann: Annotator, job: str | None, started: float) -> tuple[int | None, float | None, str, dict]:
    """Poll ``GET /next`` and the job every 200 ms until the job has ended and its model is
    served: (its model version, seconds from ``started`` to that version first being
    served, the job's seconds per stage, how its model's pass was split). The job's label
    assessment and gain run after its ranking is out, so the job ends a little after its
    model is served. Polling more often would measure the benchmark itself: on two cores,
    its requests take the time a second worker's shards need."""
    if job is None:
        return None, None, "no job", {}
    first_seen: dict[int, float] = {}
    answer: dict = {}
    deadline = time.monotonic() + 4 * 3600  # a million MiniLM embeddings take about an hour
    while time.monotonic() < deadline:
        served = ann.served_version()
        if served is not None and served not in first_seen:
            first_seen[served] = time.monotonic()
        if answer.get("status") not in ("finished", "failed"):
            answer = ann.call("GET", f"/v1/jobs/{job}").json()
        result = answer.get("result") or {}
        version = result.get("model_version")
        if answer.get("status") == "failed" and first_seen:
            break
        if version is not None and served is not None and served >= version:
            break
        time.sleep(POLL_SECONDS)
    if not result.get("stage_seconds"):
        if answer.get("status") == "failed" and first_seen:
            # a first embedding longer than JOB_TIMEOUT: the job saved its rows and a
            # follow-up job carried on; the time counts until that job's model was served
            version = min(first_seen)
            return version, first_seen[version] - started, "the job timed out; a follow-up job finished", {}
        return None, None, answer.get("status", "?"), {}
    read = (result.get("features") or {}).get("texts_read")
    texts = {True: "; texts read", False: "; no text read"}.get(read, "")
    stages = ", ".join(f"{k} {v:.2f}" for k, v in result["stage_seconds"].items()) + texts
    scoring = result.get("scoring") or {}
    if scoring.get("seconds") is not None:
        split = f"{scoring['shards']} shard" + ("s" if scoring["shards"] > 1 else "")
        if scoring["shards"] > 1:
            split += f", {scoring['by_workers']} by other workers, {scoring['redone']} redone"
        stages += f"; model pass {scoring['seconds']:.2f} s ({split})"
    seen = min((at for v, at in first_seen.items() if v >= version), default=None)
    return version, (seen - started) if seen is not None else None, stages, scoring


class Truth(Mapping):
    """Each synthetic item's label, from its index: ``i{k}``'s is ``LABELS[codes[k]]``."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes

    def __getitem__(self, item_id: str) -> str:
        return LABELS[self.codes[int(item_id[1:])]]

    def __iter__(self):
        return (f"i{k}" for k in range(len(self.codes)))

    def __len__(self) -> int:
        return len(self.codes)


def vector_chunks(n: int, dim: int, seed: int):
    """``n`` items of ``dim`` numbers each, 10,000 at a time, as (first index, the values
    rounded to two decimals as the JSON has them, the label codes): each label's items lie
    around four centres of their own (a boundary no line draws)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(4 * len(LABELS), dim))
    for start in range(0, n, 10_000):
        k = min(10_000, n - start)
        centre = rng.integers(len(centres), size=k)
        vectors = np.clip(np.round((centres[centre] + rng.normal(size=(k, dim))) * 100), -2000, 2000)
        yield start, vectors.astype(np.int64), (centre % len(LABELS)).astype(np.int8)


def vector_bodies(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Request bodies of :func:`vector_chunks`' items and no text, 10,000 a body, and each
    item's label code. The JSON is put together from a table of the values' texts."""
    table = np.array([f"{v:.2f}" for v in np.arange(-2000, 2001) / 100])
    codes = np.empty(n, dtype=np.int8)
    bodies = []
    for start, hundredths, chunk_codes in vector_chunks(n, dim, seed):
        codes[start : start + len(chunk_codes)] = chunk_codes
        cells = table[hundredths + 2000]
        rows = ",".join(f'{{"id":"i{start + j}","vector":[{",".join(cells[j])}]}}' for j in range(len(cells)))
        bodies.append(f'{{"items":[{rows}]}}')
    return bodies, codes


def bare_pass(args: argparse.Namespace, processes: list[int], repeats: int = 3) -> dict[int, list[float]]:
    """What more cores give the model's pass on this machine with nothing of alrank around
    it: the same arithmetic as a retrain's pass (the classifier trained on 120 random labels
    of the benchmark's vectors, then its probabilities and space for every item), split
    into equal parts over ``processes`` forked processes; the seconds from fork to the last
    join, per process count, ``repeats`` times in turn."""
    import multiprocessing

    from workers.models import train_single_label
    from workers.shards import shard_result

    chunks = list(vector_chunks(args.items, args.vectors, seed=1))
    x = np.concatenate([(v / 100).astype(np.float32) for _, v, _ in chunks])
    codes = np.concatenate([c for _, _, c in chunks])
    picked = np.random.default_rng(0).choice(args.items, 120, replace=False)
    model = train_single_label(x[picked], [LABELS[c] for c in codes[picked]], 0, args.classifier)
    context = multiprocessing.get_context("fork")
    times: dict[int, list[float]] = {p: [] for p in processes}
    for _ in range(repeats):
        for p in processes:
            edges = np.linspace(0, args.items, p + 1).astype(int)
            started = time.perf_counter()
            procs = [context.Process(target=shard_result, args=(model, x[a:b])) for a, b in pairwise(edges)]
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.join()
            times[p].append(time.perf_counter() - started)
    return times


def text_items(n: int, seed: int) -> tuple[list[list[dict]], np.ndarray]:
    """``n`` short texts (12 words of their label's and filler) as the client's item dicts,
    10,000 a list, and each item's label code."""
    rng = np.random.default_rng(seed)
    vocab = [np.array(WORDS[label] + FILLER) for label in LABELS]
    codes = rng.integers(len(LABELS), size=n).astype(np.int8)
    chunks = []
    for start in range(0, n, 10_000):
        k = min(10_000, n - start)
        picks = rng.integers(len(vocab[0]), size=(k, 12))
        chunks.append(
            [{"id": f"i{start + j}", "text": " ".join(vocab[codes[start + j]][picks[j]])} for j in range(k)]
        )
    return chunks, codes


def upload_with_client(ann: Annotator, chunks: list[list[dict]], codes: np.ndarray) -> float:
    """Upload the items with ``alrank.client`` as a user's program does (it encodes the
    JSON, cuts requests to the server's limits, retries 429 and 503); seconds it took."""
    client = Client(ann.base, ann.headers["Authorization"].split()[1])
    started = time.monotonic()
    client.upload_items(ann.project, (item for chunk in chunks for item in chunk))
    ann.truth = Truth(codes)  # type: ignore[assignment]
    return time.monotonic() - started


def post_bodies(ann: Annotator, bodies: list[str], codes: np.ndarray) -> float:
    """Upload the bodies one after another, as the client does; seconds it took. A 503 is
    retried after its Retry-After, as a client does."""
    session = requests.Session()
    session.headers.update(ann.headers | {"Content-Type": "application/json"})
    url = f"{ann.base}/v1/projects/{ann.project}/items"
    started = time.monotonic()
    for body in bodies:
        for _ in range(60):
            r = session.post(url, data=body, timeout=300)
            if r.status_code != 503:
                break
            time.sleep(float(r.headers.get("Retry-After", 1)))
        assert r.status_code == 200, r.text
    ann.truth = Truth(codes)  # type: ignore[assignment]
    return time.monotonic() - started


def run(args: argparse.Namespace, workers: int) -> dict:
    """One run on a fresh data dir with ``workers`` workers; its figures after the first
    retrain: seconds from label to served model, and of the model's pass."""
    served: list[float] = []
    passes: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        s = Serve(data, f"--workers={workers}")
        peaks = PeakMemory(s.proc.pid)
        peaks.start()
        try:
            redis = Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
            ann = Annotator(s.base, s.admin_key, project="million")
            settings = {"query_strategy": args.strategy, "classifier_name": args.classifier}
            bodies: list[str] = []
            if args.vectors:
                ann.create(n=0, seed=1, **settings)
                bodies, codes = vector_bodies(args.items, args.vectors, seed=1)
                kind = f"{args.vectors}-number vectors, no text"
            else:
                ann.create(n=0, seed=1, vectorizer_name=args.vectorizer, **settings)
                kind = f"short texts, {args.vectorizer}"
            if args.vectors:  # raw bodies: ten million items' dicts would not fit the bench
                seconds = post_bodies(ann, bodies, codes)
                how = "raw JSON bodies"
            else:
                chunks, codes = text_items(args.items, seed=1)
                seconds = upload_with_client(ann, chunks, codes)
                how = "alrank.client"
            print(
                f"{args.items:,} items ({kind}), {args.classifier}, {args.strategy}, {workers} worker(s): "
                f"uploaded in {seconds:.1f} s ({args.items / seconds:,.0f} items/s; {how}, 10,000 a "
                "request, one at a time, the items made before the clock starts)",
                flush=True,
            )
            print(f"after the upload: {redis_memory(redis, args.items)}", flush=True)
            peaks.since_last()  # the upload's peaks are printed with the run's
            for k in range(args.retrains + 1):
                t = time.monotonic()
                job = ann.label_batch(10)["training_jobs"].get(ann.schema)
                if k == 0:  # the first model needs min_instances_for_training labels
                    job = ann.label_batch(10)["training_jobs"].get(ann.schema)
                version, seconds, stages, scoring = follow(ann, job, t)
                took = f"{seconds:.1f} s" if seconds is not None else "?"
                print(
                    f"retrain {k + 1}: model version {version} served {took} after its triggering labels "
                    f"({len(ann.acked)} labels so far); job stages: {stages}; peak {peaks.since_last()}",
                    flush=True,
                )
                if k > 0 and seconds is not None:
                    served.append(seconds)
                if k > 0 and scoring.get("seconds") is not None:
                    passes.append(scoring["seconds"])
            time.sleep(2)  # the last job's label assessment and gain run after publication
            print(f"after {args.retrains + 1} retrains: {redis_memory(redis, args.items)}")
            features = directory_size(data / "features")
            print(f"feature directory: {features / args.items:.0f} B/item ({features / 2**30:.2f} GiB)")
            print(
                "peak resident memory: "
                + ", ".join(f"{n} {b / 2**30:.2f} GiB" for n, b in sorted(peaks.peaks.items()))
            )
            print(f"acknowledged labels lost: {len(ann.lost_labels())}", flush=True)
        finally:
            peaks.done.set()
            s.close()
    return {"served": served, "passes": passes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--retrains", type=int, default=10)
    parser.add_argument("--strategy", default="diverse_uncertainty")
    parser.add_argument("--vectorizer", default="tfidf")
    parser.add_argument("--classifier", default="logistic_regression")
    parser.add_argument(
        "--vectors",
        type=int,
        default=0,
        help="items of this many numbers each and no text, in place of texts",
    )
    parser.add_argument("--workers", default="2", help="worker counts to run, one fresh run each (e.g. 1,2)")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    runs = {w: run(args, w) for w in counts}
    print("\nafter the first retrain, per worker count:")
    for w, figures in runs.items():
        print(
            f"  {w} worker(s): label to served, median {spread(figures['served'])}; "
            f"model pass, median {spread(figures['passes'])}"
        )
    if len(counts) > 1:
        base, most = runs[counts[0]], runs[counts[-1]]
        for name in ("passes", "served"):
            if base[name] and most[name] and statistics.median(most[name]) > 0:
                ratio = statistics.median(base[name]) / statistics.median(most[name])
                what = "model pass" if name == "passes" else "label to served"
                print(f"  speed-up of {counts[-1]} workers over {counts[0]}, {what}: {ratio:.2f}x")
        if args.vectors:
            bare = bare_pass(args, [counts[0], counts[-1]])
            print(
                f"the same pass's arithmetic alone, forked into equal parts ({args.classifier}, 120 labels):"
            )
            for p, seconds in bare.items():
                print(f"  {p} process(es): median {spread(seconds)}")
            ratio = statistics.median(bare[counts[0]]) / statistics.median(bare[counts[-1]])
            print(
                f"  speed-up of {counts[-1]} processes over {counts[0]}: {ratio:.2f}x (what the cores give)"
            )


if __name__ == "__main__":
    main()
