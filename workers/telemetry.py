"""What the workers tell operators: job counts and stage durations, the request id in logs.

RQ forks a work horse per job, and workers may run on other machines than the API, so the
workers' figures go to Redis, which every process reaches, rather than to per-process
files: a job adds to counters and histogram buckets in one hash (``JOB_METRICS``), and the
API's ``GET /metrics`` reads them back as Prometheus counters and histograms
(:mod:`service.telemetry`).

A request's id (``X-Request-ID``) is kept in a context variable while the request runs; a
job enqueued meanwhile carries it in its meta, and the worker sets it again while the job
runs, so every log line of the request and of the jobs it started shares it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from redis import Redis
from redis.exceptions import RedisError

from workers.store import keys
from workers.store._codec import text

log = logging.getLogger(__name__)

JOB_METRICS = keys.metrics()
"""Hash of the counters kept in Redis: ``jobs NUL kind NUL outcome`` -> jobs ended so;
``labels NUL source NUL received`` -> labels stored that came in by ``source``;
``stage NUL name NUL le`` -> refresh stages that took at most ``le`` seconds (cumulative,
as Prometheus buckets are), with ``... NUL sum`` and ``... NUL count``."""

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Upper bounds (seconds) of the refresh stage histogram: from a cached-feature reload
to a first MiniLM pass over a large pool."""

request_id: ContextVar[str | None] = ContextVar("alrank_request_id", default=None)
"""The id of the request (or of the request that enqueued the job) under way."""

job_id: ContextVar[str | None] = ContextVar("alrank_job_id", default=None)
"""The id of the RQ job under way in this process."""


def job_meta() -> dict[str, str]:
    """What a job enqueued now carries of the request that enqueued it."""
    rid = request_id.get()
    return {"request_id": rid} if rid else {}


@contextmanager
def job_context(job_id_: str, meta: Mapping) -> Iterator[None]:
    """Log lines within carry the job's id and its request's id."""
    tokens = (job_id.set(job_id_), request_id.set(meta.get("request_id")))
    try:
        yield
    finally:
        job_id.reset(tokens[0])
        request_id.reset(tokens[1])


def record_job(
    conn: Redis, kind: str, outcome: str, stage_seconds: Mapping[str, float] | None = None
) -> None:
    """Count a job that ended (``outcome``: published, up_to_date, skipped, failed...) and
    each stage's seconds. A Redis failure here never fails the job."""
    pipe = conn.pipeline(transaction=False)
    pipe.hincrby(JOB_METRICS, f"jobs\x00{kind}\x00{outcome}", 1)
    for stage, seconds in (stage_seconds or {}).items():
        for le in STAGE_BUCKETS:
            if seconds <= le:
                pipe.hincrby(JOB_METRICS, f"stage\x00{stage}\x00{le}", 1)
        pipe.hincrby(JOB_METRICS, f"stage\x00{stage}\x00+Inf", 1)
        pipe.hincrbyfloat(JOB_METRICS, f"stage\x00{stage}\x00sum", float(seconds))
    try:
        pipe.execute()
    except RedisError as exc:
        log.warning("could not record the job's metrics: %s", exc)


def record_labels(conn: Redis, source: str, n: int) -> None:
    """Count ``n`` labels stored that came in by ``source`` (api, label_studio, potato)."""
    try:
        conn.hincrby(JOB_METRICS, f"labels\x00{source}\x00received", n)
    except RedisError as exc:
        log.warning("could not count the labels received: %s", exc)


def stored_counts(
    conn: Redis,
) -> tuple[dict[tuple[str, str], int], dict[str, dict[str, float]], dict[str, int]]:
    """The recorded jobs by (kind, outcome); per stage its buckets (by upper bound, as
    text) and ``sum``; the labels received by source."""
    jobs: dict[tuple[str, str], int] = {}
    stages: dict[str, dict[str, float]] = {}
    received: dict[str, int] = {}
    for field, value in conn.hgetall(JOB_METRICS).items():
        what, a, b = text(field).split("\x00")
        if what == "jobs":
            jobs[(a, b)] = int(value)
        elif what == "labels":
            received[a] = int(value)
        else:
            stages.setdefault(a, {})[b] = float(value)
    return jobs, stages, received


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` to every record (None outside a request or job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


class TextFormatter(logging.Formatter):
    """A line for a terminal, ending in the request and job ids when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name}={value}"
            for name in ("request_id", "job_id")
            if (value := getattr(record, name, None)) is not None
        ]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def log_format() -> str:
    """``json`` or ``text``, from ``ALRANK_LOG_FORMAT`` (text unless it says json)."""
    return "json" if os.environ.get("ALRANK_LOG_FORMAT", "").strip().lower() == "json" else "text"


def formatter() -> logging.Formatter:
    """One JSON object a line (python-json-logger) when ``ALRANK_LOG_FORMAT=json``, text
    otherwise."""
    if log_format() == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )
    return TextFormatter(TEXT_FORMAT)


def handler(stream=None) -> logging.Handler:
    """A stream handler (stderr by default) with alrank's format and context."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(formatter())
    out.addFilter(ContextFilter())
    return out


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger's records, with their context, to stderr in alrank's format."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler())
    root.setLevel(level)
