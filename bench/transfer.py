"""Export and import of a large project through ``alrank serve`` and the CLI.

For each pool size (default 100,000 then 1,000,000 items of about 100 characters, with
20,000 labels from four annotators): starts ``alrank serve`` on a fresh data dir, uploads
the pool with the client, then

- ``alrank projects export P --out p.alrank``: seconds, items/s, file size;
- ``alrank projects delete P`` and ``alrank projects import p.alrank``: seconds, items/s;
- a second export of the imported project, whose item and label lines must equal the
  first's byte for byte;

and samples the resident memory of the CLI and of the API's gunicorn worker every 50 ms
while each runs. Memory that stays flat from 100,000 to 1,000,000 items is memory bounded
by the page, not the pool. The upload's rate through the client is printed beside, as the
baseline of the same machine in the same run.
Usage: ``python bench/transfer.py [--sizes 100000,1000000] [--labels 20000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import ROOT, Serve, children, cmdline, wait_until
from prometheus_client.parser import text_string_to_metric_families

from alrank.client import Client


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Peak:
    """The highest resident memory of some processes while a block runs, sampled."""

    def __init__(self, pids) -> None:
        self.pids = pids
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()

    def __enter__(self) -> Peak:
        def sample() -> None:
            while not self.stop.is_set():
                for name, pid in self.pids().items():
                    self.peak[name] = max(self.peak.get(name, 0.0), rss_mb(pid))
                time.sleep(0.05)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def idle(base: str, key: str) -> bool:
    """No job waiting or running on the ranking queue (read from GET /metrics)."""
    text = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    busy = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("alrank_queue_jobs", "alrank_queue_running_jobs") and s.labels["queue"] == "alrank":
                busy += s.value
    return busy == 0


def cli(serve: Serve, *args: str, pids: dict) -> tuple[subprocess.CompletedProcess, float, dict]:
    """Run an alrank command, timing it and sampling its memory and the API worker's."""
    env = {**os.environ, "ALRANK_URL": serve.base, "ALRANK_API_KEY": serve.admin_key}
    exe = Path(sys.executable).with_name("alrank")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
    proc = subprocess.Popen(
        [*command, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    started = time.monotonic()
    with Peak(lambda: {**pids(), "cli": proc.pid}) as peak:
        out, err = proc.communicate()
    seconds = time.monotonic() - started
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr}")
    return done, seconds, peak.peak


def body_digest(path: Path) -> tuple[str, int]:
    """SHA-256 of the item and label lines of an export, and how many there were."""
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for line in f:
            if line.startswith((b'{"item"', b'{"labelled"')):
                h.update(line)
                n += 1
    return h.hexdigest(), n


def run(size: int, n_labels: int, tmp: Path) -> dict:
    serve = Serve(tmp / f"data-{size}")
    try:
        admin = Client(serve.base, serve.admin_key, timeout=600)
        admin.create_project(
            {
                "name": "big",
                "schemas": [{"name": "topic", "labels": ["sport", "politics", "science", "arts"]}],
                # no model: the pool is ranked once, then nothing runs beside the transfer
                "active_learning": {
                    "min_instances_for_training": 1_000_000,
                    "update_frequency": 1_000_000,
                    "vectorizer_name": "tfidf",
                },
            }
        )
        words = "the match vote senate atom cell paint film goal budget orbit stage league court".split()
        primes = (1, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)
        items = (
            {
                "id": f"item-{k:08d}",
                "text": " ".join(words[(k * p) % len(words)] for p in primes),
                "metadata": {"source": "bench", "n": k},
            }
            for k in range(size)
        )
        t = time.monotonic()
        admin.upload_items("big", items)
        upload_rate = size / (time.monotonic() - t)
        labels = (
            {
                "item": f"item-{(k * 7919) % size:08d}",
                "schema": "topic",
                "value": ["sport", "politics", "science", "arts"][k % 4],
                "annotator": f"ann{k % 4}",
            }
            for k in range(n_labels)
        )
        admin.push_labels("big", labels)
        wait_until(lambda: idle(serve.base, serve.admin_key), 3600, "the first ranking", every=2)

        def api_pid() -> dict:
            """The API's gunicorn worker: a child of the gunicorn master alrank serve runs."""
            masters = [p for p in children(serve.proc.pid) if "gunicorn" in cmdline(p)]
            workers = children(masters[0]) if masters else []
            return {"api": workers[0]} if workers else {}

        first, quiet = tmp / f"big-{size}.alrank", "--no-progress"
        _, export_s, export_peak = cli(
            serve, "projects", "export", "big", "--out", str(first), quiet, pids=api_pid
        )
        cli(serve, "projects", "delete", "big", pids=api_pid)
        _, import_s, import_peak = cli(serve, "projects", "import", str(first), quiet, pids=api_pid)
        second = tmp / f"big-{size}-again.alrank"
        cli(serve, "projects", "export", "big", "--out", str(second), quiet, pids=api_pid)
        (d1, n1), (d2, n2) = body_digest(first), body_digest(second)
        wait_until(lambda: idle(serve.base, serve.admin_key), 3600, "the retrain after the import", every=2)
        return {
            "size": size,
            "upload_rate": upload_rate,
            "export_s": export_s,
            "import_s": import_s,
            "file_mb": first.stat().st_size / 1e6,
            "export_peak": export_peak,
            "import_peak": import_peak,
            "identical": d1 == d2 and n1 == n2 == size + min(n_labels, size),
            "lines": n1,
        }
    finally:
        serve.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--labels", type=int, default=20_000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            row = run(size, args.labels, Path(tmp))
            rows.append(row)
            ex, im = row["export_peak"], row["import_peak"]
            print(
                f"{size:>10,} items: upload {row['upload_rate']:,.0f} items/s (baseline) | export "
                f"{row['export_s']:.1f} s = {size / row['export_s']:,.0f} items/s, {row['file_mb']:.0f} MB | "
                f"import {row['import_s']:.1f} s = {size / row['import_s']:,.0f} items/s | peak RSS MB: "
                f"export cli {ex.get('cli', 0):.0f} api {ex.get('api', 0):.0f}, "
                f"import cli {im.get('cli', 0):.0f} api {im.get('api', 0):.0f} | "
                f"round trip byte for byte: {'yes' if row['identical'] else 'NO'} ({row['lines']:,} lines)",
                flush=True,
            )
    if not all(r["identical"] for r in rows):
        raise SystemExit("a round trip changed the items or labels")


if __name__ == "__main__":
    main()
