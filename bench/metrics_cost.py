"""What measuring costs ``GET /next``: its latency with metrics on against off.

Two gunicorn servers (one worker process each, as configured for production) share one
Redis and one ranked pool; one runs with ``ALRANK_METRICS=false``. Rounds alternate
between them, each sending ``--requests`` sequential ``GET /next`` (size 10) on a kept-alive
connection and then releasing the leases, so both see the same data and the same drift of
a shared machine. Prints per round the p50 and p99 of each, then the medians over rounds,
their difference and the spread of the difference across rounds. Then, as that spread is
wide on a shared machine, the cost of the counting itself: the metric writes one
``GET /next`` of 10 items makes, timed in a process of their own in multiprocess mode
(median of 5 runs of 5,000).
Usage: ``python bench/metrics_cost.py [--rounds 6] [--requests 2000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import ADMIN_KEY, answers, free_port, gunicorn, terminate, wait_until

from alrank.client import Client
from service.cli import embedded_redis


def sample(base: str, project: str, requests_n: int, tag: str) -> np.ndarray:
    """Latencies (ms) of sequential GET /next, then the leases given back."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    out = np.empty(requests_n)
    annotators = set()
    for k in range(requests_n):
        annotator = f"{tag}-{k // 100}"
        annotators.add(annotator)
        t = time.perf_counter()
        r = session.get(
            f"{base}/v1/projects/{project}/next",
            params={"schema": "topic", "annotator": annotator, "size": 10},
            timeout=30,
        )
        out[k] = (time.perf_counter() - t) * 1000
        assert r.status_code == 200 and len(r.json()["items"]) == 10, r.text
    for annotator in annotators:
        body = {"schema": "topic", "annotator": annotator}
        session.post(f"{base}/v1/projects/{project}/leases/release", json=body, timeout=30)
    return out


COUNTING = """
import statistics, time
from service.telemetry import HTTP_REQUESTS, HTTP_SECONDS, count_served
from service import create_app
with create_app({"REDIS_URL": "redis://127.0.0.1:1/0"}).app_context():
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(5000):
            HTTP_REQUESTS.labels("GET", "/v1/projects/<project>/next", "200").inc()
            HTTP_SECONDS.labels("GET", "/v1/projects/<project>/next").observe(0.003)
            count_served(["ranking"] * 9 + ["random"])
        runs.append((time.perf_counter() - t) / 5000 * 1e6)
print(f"{statistics.median(runs):.1f} {min(runs):.1f} {max(runs):.1f}")
"""


def counting_cost() -> str:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        out = subprocess.run(
            [sys.executable, "-c", COUNTING], env=env, capture_output=True, text=True, check=True
        )
    median, low, high = out.stdout.split()
    return f"the metric writes of one GET /next: {median} µs (runs {low} to {high} µs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--items", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        command, url = embedded_redis(Path(tmp) / "redis")
        redis = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        servers = {}
        try:
            from procs import Annotator

            ports = {"on": free_port(), "off": free_port()}
            base_env = {**os.environ, "REDIS_URL": url, "ALRANK_ADMIN_KEY": ADMIN_KEY}
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # an access line a request
            servers["on"] = gunicorn(url, ports["on"], env=base_env, **quiet)
            servers["off"] = gunicorn(url, ports["off"], env={**base_env, "ALRANK_METRICS": "false"}, **quiet)
            bases = {mode: f"http://127.0.0.1:{port}" for mode, port in ports.items()}
            for base in bases.values():
                wait_until(lambda b=base: answers(b + "/healthz"), 60, "gunicorn to answer")
            worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], env=base_env, **quiet)
            try:
                ann = Annotator(bases["on"], ADMIN_KEY, project="cost")
                ann.create(n=args.items, seed=3, update_frequency=1_000_000)
                for _ in range(3):
                    ann.label_round(10)
                Client(bases["on"], ADMIN_KEY).train("cost", "topic")
                wait_until(lambda: ann.served_version() is not None, 600, "a model to be served")
            finally:
                terminate([worker])  # nothing retrains during the measurement
            for base in bases.values():
                sample(base, "cost", 200, "warm")
            rows: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            for r in range(args.rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for mode in order:
                    ms = sample(bases[mode], "cost", args.requests, f"r{r}{mode}")
                    rows[mode].append((float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
                print(
                    f"round {r + 1}: metrics on p50 {rows['on'][-1][0]:.2f} p99 {rows['on'][-1][1]:.2f} ms | "
                    f"off p50 {rows['off'][-1][0]:.2f} p99 {rows['off'][-1][1]:.2f} ms",
                    flush=True,
                )
            p99 = {mode: [p for _, p in rows[mode]] for mode in rows}
            p50 = {mode: [p for p, _ in rows[mode]] for mode in rows}
            diffs = [a - b for a, b in zip(p99["on"], p99["off"], strict=True)]
            print(
                f"median over {args.rounds} rounds of {args.requests} requests: "
                f"p50 on {statistics.median(p50['on']):.2f} / off {statistics.median(p50['off']):.2f} ms; "
                f"p99 on {statistics.median(p99['on']):.2f} / off {statistics.median(p99['off']):.2f} ms; "
                f"p99 cost of metrics {statistics.median(diffs):+.2f} ms "
                f"(per-round differences {min(diffs):+.2f} to {max(diffs):+.2f} ms)"
            )
        finally:
            terminate(list(servers.values()))
            redis.terminate()
            redis.wait(timeout=10)
    print(counting_cost())


if __name__ == "__main__":
    main()
