"""Real processes for tests: ``alrank serve``, process trees, and an annotator over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent

ADMIN_KEY = "proc-admin-key-0123456789abcdef"
"""The admin key of the gunicorn processes tests start themselves (``gunicorn``)."""


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless Chromium as root on a machine with no network beyond loopback: without the
background-networking flags it keeps trying hosts it cannot reach."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def gunicorn(redis_url: str, port: int, **popen) -> subprocess.Popen:
    """The API under gunicorn, one worker process, as ``docker-compose.yml`` configures it."""
    command = [
        *(sys.executable, "-m", "gunicorn", "--config=python:service.gunicorn"),
        *(f"--bind=127.0.0.1:{port}", "--workers=1", "service:create_app()"),
    ]
    popen.setdefault("env", {**os.environ, "REDIS_URL": redis_url, "ALRANK_ADMIN_KEY": ADMIN_KEY})
    return subprocess.Popen(command, cwd=ROOT, **popen)


def terminate(procs: list[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM each process, then SIGKILL what has not exited within ``timeout``."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Serve:
    """``alrank serve`` on a data dir and a free port, as a user runs it."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.log = open(data_dir.parent / f"serve-{self.port}.log", "wb")
        exe = Path(sys.executable).with_name("alrank")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
        self.proc = subprocess.Popen(
            [*command, "serve", f"--data-dir={data_dir}", f"--port={self.port}", "--api-workers=1", *args],
            env=environ,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.seen: set[int] = set()
        wait_until(self.ready, 60, "alrank serve to be ready")
        self.admin_key = (data_dir / "admin-key").read_text(encoding="ascii").strip()
        """The admin key alrank serve made in its data dir."""

    def ready(self) -> bool:
        self.seen.update(descendants(self.proc.pid))
        try:
            return requests.get(self.base + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def processes(self, word: str) -> list[int]:
        """Live descendants whose command line holds ``word``."""
        found = [p for p in descendants(self.proc.pid) if word in cmdline(p)]
        self.seen.update(found)
        return found

    def workers(self) -> list[int]:
        """The RQ worker processes (each forks a work horse per job)."""
        found = [p for p in children(self.proc.pid) if "workers.worker" in cmdline(p)]
        self.seen.update(found)
        return found

    def horses(self) -> list[int]:
        found = [h for w in self.workers() for h in children(w)]
        self.seen.update(found)
        return found

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, as an init system stops it; returns the seconds it took to exit."""
        self.seen.update(descendants(self.proc.pid))
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.proc.kill()
        kill_all([p for p in self.seen if alive(p)])
        self.log.close()

    def leftovers(self) -> list[int]:
        """Processes this service started that are still running."""
        return [p for p in self.seen if alive(p)]


WORDS = {
    "sport": "goal match striker league coach penalty season keeper derby cup".split(),
    "politics": "vote senate budget minister party election tax bill court law".split(),
}
FILLER = "the a of and to in with for on at by from".split()


class Annotator:
    """An annotation tool driving one project over HTTP: ask, label what it got, repeat.

    Requests answered 503 are retried after their Retry-After, as a client should; every
    label the service acknowledged is remembered, to check none is lost."""

    def __init__(self, base: str, key: str, project: str = "rel", schema: str = "topic") -> None:
        self.base, self.project, self.schema = base, project, schema
        self.headers = {"Authorization": f"Bearer {key}"}
        self.truth: dict[str, str] = {}
        self.acked: dict[str, str] = {}

    def call(self, method: str, path: str, timeout: float = 30.0, **kwargs) -> requests.Response:
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = requests.request(method, self.base + path, timeout=10, headers=self.headers, **kwargs)
                if r.status_code != 503 or time.monotonic() > deadline:
                    return r
                time.sleep(min(float(r.headers.get("Retry-After", 1)), 1.0))
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def create(self, n: int = 600, seed: int = 0, **settings) -> None:
        rng = np.random.default_rng(seed)
        al = {
            "vectorizer_name": "tfidf",
            "min_instances_for_training": 4,
            "update_frequency": 10,
            "eval_fraction": 0.0,
            **settings,
        }
        body = {
            "name": self.project,
            "schemas": [{"name": self.schema, "labels": list(WORDS)}],
            "active_learning": al,
        }
        assert self.call("POST", "/v1/projects", json=body).status_code == 201
        self.add_items(n, rng)

    def add_items(self, n: int, rng: np.random.Generator, prefix: str = "i") -> None:
        start = len(self.truth)
        items = []
        for k in range(start, start + n):
            label = str(rng.choice(list(WORDS)))
            self.truth[f"{prefix}{k}"] = label
            text = " ".join(rng.choice(WORDS[label] + FILLER, size=12))
            items.append({"id": f"{prefix}{k}", "text": text})
        for chunk in range(0, len(items), 10_000):
            r = self.call(
                "POST", f"/v1/projects/{self.project}/items", json={"items": items[chunk : chunk + 10_000]}
            )
            assert r.status_code == 200, r.text

    def label_round(self, size: int = 10, annotator: str = "ana") -> int:
        return self.label_batch(size, annotator)["received"]

    def label_batch(self, size: int = 10, annotator: str = "ana") -> dict:
        """Ask for a batch and label it with the truth; the labels' answer (``received``,
        ``training_jobs``...)."""
        params = {"schema": self.schema, "annotator": annotator, "size": size}
        batch = self.call("GET", f"/v1/projects/{self.project}/next", params=params).json()
        labels = [
            {"item": it["id"], "schema": self.schema, "value": self.truth[it["id"]], "annotator": annotator}
            for it in batch["items"]
        ]
        r = self.call("POST", f"/v1/projects/{self.project}/labels", json={"labels": labels})
        assert r.status_code == 200, r.text
        self.acked |= {lab["item"]: lab["value"] for lab in labels}
        return r.json()

    def served_version(self) -> int | None:
        params = {"schema": self.schema, "annotator": "probe", "size": 1}
        r = self.call("GET", f"/v1/projects/{self.project}/next", params=params)
        return r.json()["model_version"] if r.status_code == 200 else None

    def wait_for_version_above(self, version: int | None, timeout: float) -> tuple[int, float]:
        """Until ``GET /next`` serves a model newer than ``version``: (version, seconds)."""
        started = time.monotonic()
        new = wait_until(
            lambda: (v := self.served_version()) is not None and v > (version or 0) and v,
            timeout,
            f"a model version above {version} served by GET /next",
        )
        return new, time.monotonic() - started

    def lost_labels(self) -> list[str]:
        """Acknowledged labels the service no longer has."""
        lost = []
        for item, value in self.acked.items():
            r = self.call("GET", f"/v1/projects/{self.project}/items/{item}")
            if r.status_code == 404:
                continue  # the test deleted it
            if r.json()["labels"][self.schema].get("ana") != value:
                lost.append(item)
        return lost
