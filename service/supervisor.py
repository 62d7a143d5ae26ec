"""Keeping the processes of ``alrank serve`` running.

A child that exits while the service runs (a crash, the kernel's OOM killer, a stray
``kill``) is started again after a back-off that doubles from ``RESTART_MIN_SECONDS`` to
``RESTART_MAX_SECONDS`` and resets once the child has run for ``RESTART_RESET_SECONDS``;
every exit and restart is logged. Stopping sends each child SIGTERM (a worker finishes
its job if it can within ``stop_grace`` seconds), then SIGTERM again (RQ's cold shutdown:
the worker kills its work horse), then SIGKILL.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

RESTART_MIN_SECONDS = 1.0
"""Wait before the first restart of a child that exited."""

RESTART_MAX_SECONDS = 30.0
"""Longest wait between restarts of a child that keeps exiting."""

RESTART_RESET_SECONDS = 60.0
"""A child that ran this long before exiting is restarted after the shortest wait again."""

STOP_GRACE_SECONDS = 10.0
"""How long a child may take to stop on SIGTERM before it is told again, then killed
(``alrank serve --stop-grace``)."""

STOP_FORCE_SECONDS = 5.0
"""How long a child may take after the second SIGTERM before it is killed."""


_serve_log = logging.getLogger("alrank.serve")


def log(message: str) -> None:
    """A line of the supervisor's on stderr: ``alrank: ...`` for a terminal, or a JSON
    object like every other process's under ``ALRANK_LOG_FORMAT=json``."""
    from workers.telemetry import handler, log_format  # not at import: the client CLI imports this

    if log_format() != "json":
        print(f"alrank: {message}", file=sys.stderr, flush=True)
        return
    if not _serve_log.handlers:
        _serve_log.addHandler(handler())
        _serve_log.setLevel(logging.INFO)
        _serve_log.propagate = False
    _serve_log.info(message)


@dataclass
class Child:
    """One supervised process: its name, its command and its restart state."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = RESTART_MIN_SECONDS
    restart_at: float | None = None
    restarts: int = 0
    ready: Callable[[], bool] | None = None
    """Whether the child serves yet: the children after it start once it does."""
    stop_last: bool = False
    """Stopped after the others (the storage they write to on their way out)."""

    def start(self) -> None:
        # a session of its own: a Ctrl-C in the terminal reaches the supervisor alone, which
        # then stops the children in order
        self.process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Start children, restart the ones that exit, stop them all on SIGTERM or SIGINT."""

    def __init__(
        self, children: list[Child], poll_seconds: float = 0.2, stop_grace: float = STOP_GRACE_SECONDS
    ) -> None:
        self.children = children
        self.poll_seconds = poll_seconds
        self.stop_grace = stop_grace
        self.stopping = False

    def request_stop(self, signum: int, frame) -> None:
        self.stopping = True

    def run(self, until: Callable[[], bool] | None = None) -> int:
        """Supervise until a signal (or ``until()``) says stop; returns the exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            for child in self.children:
                child.start()
                if child.ready is not None:
                    self.wait_ready(child)
            while not self.stopping and not (until is not None and until()):
                self.tend(time.monotonic())
                time.sleep(self.poll_seconds)
        finally:
            self.stop()
        return 0

    def tend(self, now: float) -> None:
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    log(f"restarting the {child.name} (restart {child.restarts})")
                    child.start()
                continue
            if child.process is None or child.process.poll() is None:
                continue
            ran = now - child.started_at
            if ran >= RESTART_RESET_SECONDS:
                child.backoff = RESTART_MIN_SECONDS
            log(
                f"the {child.name} exited with {_describe(child.process.returncode)} after {ran:.1f} s; "
                f"restarting in {child.backoff:.0f} s"
            )
            child.restart_at = now + child.backoff
            child.backoff = min(child.backoff * 2, RESTART_MAX_SECONDS)

    def wait_ready(self, child: Child, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.stopping and time.monotonic() < deadline:
            assert child.ready is not None
            if child.ready():
                return
            if not child.running():
                raise SystemExit(f"alrank: the {child.name} exited as it started; see its log")
            time.sleep(0.05)
        if not self.stopping:
            raise SystemExit(f"alrank: the {child.name} did not get ready within {timeout:.0f} s")

    def stop(self) -> None:
        self._stop([c for c in self.children if not c.stop_last])
        self._stop([c for c in self.children if c.stop_last])

    def _stop(self, children: list[Child]) -> None:
        running = [c for c in children if c.running()]
        steps = (
            # RQ ignores a second signal within a second of the first
            (signal.SIGTERM, max(self.stop_grace, 1.5)),
            (signal.SIGTERM, STOP_FORCE_SECONDS),
            (signal.SIGKILL, STOP_FORCE_SECONDS),
        )
        for sig, wait in steps:
            for child in running:
                assert child.process is not None
                child.process.send_signal(sig)
            deadline = time.monotonic() + wait
            for child in running:
                assert child.process is not None
                try:
                    child.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    pass
            running = [c for c in running if c.running()]
            if not running:
                return


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"
