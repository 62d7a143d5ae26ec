"""What the API tells operators: ``GET /metrics`` for Prometheus, request ids, access logs.

Metrics come from two places, merged in one answer:

- the API processes' own (HTTP requests by route and status with their latency, items
  handed out by source), kept by ``prometheus_client``. Under gunicorn every worker process
  writes them to files in ``PROMETHEUS_MULTIPROC_DIR`` (``service.gunicorn`` makes one when
  it is unset) and any of them sums them all: the library's multiprocess mode;
- what lives in Redis, read at scrape time: the workers' job counts and stage durations
  and the labels received (:mod:`workers.telemetry`), queue depths, failed jobs, workers
  alive, and per project and schema the published ranking's age and the labels since it.

Project and schema names are label values only for at most ``METRICS_PROJECTS`` projects
(``ALRANK_METRICS_PROJECTS``, default 50): those whose rankings lag furthest behind their
labels, so an alert names them; every schema counts in the ``..._max`` gauges whatever
their number. ``/metrics`` needs the admin key, like every operator's view of all projects.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import re
import time
import uuid
from collections import Counter as Tally

from flask import Flask, Response, current_app, g, request
from flask.views import MethodView
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis import Redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from service import examples
from service.bodies import Blueprint
from service.errors import problem_response
from service.extensions import api, backend
from service.health import _alive
from workers import defaults, telemetry
from workers.store import keys
from workers.store._codec import text

access_log = logging.getLogger("alrank.access")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
"""A caller's request id is kept when it is this tame; otherwise one is made."""

METRICS_PROJECTS = 50
"""Most projects named in per-project series (``ALRANK_METRICS_PROJECTS``)."""

disable_created_metrics()  # ``*_created`` series double every counter and tell little

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "alrank_http_requests", "HTTP requests answered, by route and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "alrank_http_request_duration_seconds",
    "Seconds from a request's arrival to its answer, by route",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
ITEMS_SERVED = Counter(
    "alrank_items_served",
    "Items handed out by GET .../next, by source (ranking, random, evaluation, ...)",
    ["source"],
)

blp = Blueprint("telemetry", __name__, description="Operating the service")


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200, content_type=CONTENT_TYPE_LATEST)
    @blp.doc(
        responses={
            "200": {
                "description": "Prometheus text format",
                "content": {"text/plain": {"example": examples.PROMETHEUS}},
            }
        },
        description="Prometheus metrics of every API and worker process (the admin key).",
    )
    def get(self):
        """Prometheus metrics: requests, labels, jobs, queues, and each ranking's age."""
        if current_app.config.get("METRICS") is False:
            return problem_response(404, "Not Found", "metrics are turned off (ALRANK_METRICS=false)")
        own = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(own)
            body = generate_latest(own)
        else:
            body = generate_latest(REGISTRY)
        stored = CollectorRegistry()
        stored.register(StoredMetrics(backend().redis))
        return Response(body + generate_latest(stored), content_type=CONTENT_TYPE_LATEST)


class StoredMetrics:
    """The figures kept in Redis, read when Prometheus scrapes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self):
        yield from self.job_metrics()
        yield from self.queue_metrics()
        yield from self.schema_metrics()

    def job_metrics(self):
        jobs, stages, received = telemetry.stored_counts(self.redis)
        done = CounterMetricFamily(
            "alrank_jobs", "Jobs the workers ended, by kind and outcome", labels=["kind", "outcome"]
        )
        for (kind, outcome), n in sorted(jobs.items()):
            done.add_metric([kind, outcome], n)
        yield done
        labels = CounterMetricFamily(
            "alrank_labels_received", "Labels stored, by the way they came in", labels=["source"]
        )
        for source, n in sorted(received.items()):
            labels.add_metric([source], n)
        yield labels
        hist = HistogramMetricFamily(
            "alrank_refresh_stage_duration_seconds",
            "Seconds each stage of a retrain-and-rank took",
            labels=["stage"],
        )
        for stage, found in sorted(stages.items()):
            buckets = [(str(le), found.get(str(le), 0.0)) for le in telemetry.STAGE_BUCKETS]
            buckets.append(("+Inf", found.get("+Inf", 0.0)))
            hist.add_metric([stage], buckets, found.get("sum", 0.0))
        yield hist

    def queue_metrics(self):
        depth = GaugeMetricFamily("alrank_queue_jobs", "Jobs waiting in each queue", labels=["queue"])
        running = GaugeMetricFamily("alrank_queue_running_jobs", "Jobs running, by queue", labels=["queue"])
        failed = GaugeMetricFamily(
            "alrank_failed_jobs", "Failed jobs kept in each queue's failed registry", labels=["queue"]
        )
        for name in (defaults.QUEUE_NAME, defaults.SYNC_QUEUE_NAME, defaults.SIMULATION_QUEUE_NAME):
            queue = Queue(name, connection=self.redis)
            depth.add_metric([name], queue.count)
            running.add_metric([name], StartedJobRegistry(queue=queue).count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        yield from (depth, running, failed)
        alive = sum(_alive(w) for w in Worker.all(connection=self.redis))
        yield GaugeMetricFamily("alrank_workers", "Workers that sent a heartbeat lately", value=alive)

    def schema_metrics(self):
        rows = self.lags(time.time())
        yield GaugeMetricFamily("alrank_projects", "Projects in the service", value=len({r[0] for r in rows}))
        ages = [r[2] for r in rows if r[2] is not None]
        yield GaugeMetricFamily(
            "alrank_ranking_age_max_seconds",
            "The oldest published ranking's age, over every schema",
            value=max(ages, default=0.0),
        )
        yield GaugeMetricFamily(
            "alrank_labels_since_ranking_max",
            "Most items any schema has had labelled since its published ranking",
            value=max((r[3] for r in rows), default=0),
        )
        limit = int(current_app.config.get("METRICS_PROJECTS", METRICS_PROJECTS))
        lagging = sorted(rows, key=lambda r: (-r[3], -(r[2] or 0.0), r[0], r[1]))
        named: set[str] = set()
        for row in lagging:
            if len(named) >= limit:
                break
            named.add(row[0])
        age = GaugeMetricFamily(
            "alrank_ranking_age_seconds",
            "Seconds since the schema's ranking was published",
            labels=["project", "schema"],
        )
        since = GaugeMetricFamily(
            "alrank_labels_since_ranking",
            "Items labelled since the published ranking was computed (all of them, before any)",
            labels=["project", "schema"],
        )
        for project, schema, ranking_age, changes in rows:
            if project not in named:
                continue
            if ranking_age is not None:
                age.add_metric([project, schema], ranking_age)
            since.add_metric([project, schema], changes)
        yield from (age, since)

    def lags(self, now: float) -> list[tuple[str, str, float | None, int]]:
        """Per schema of every project: (project, schema, the ranking's age or None, items
        labelled since it), in three round trips to Redis whatever the number of projects."""
        projects = sorted(text(p) for p in self.redis.smembers(keys.projects()))
        pipe = self.redis.pipeline(transaction=False)
        for project in projects:
            pipe.get(keys.config(project))
        schemas = [
            (project, schema["name"])
            for project, raw in zip(projects, pipe.execute(), strict=True)
            if raw is not None
            for schema in json.loads(raw).get("schemas", [])
        ]
        for project, schema in schemas:
            pipe.hlen(keys.labels(project, schema))
            pipe.get(keys.ranking(project, schema))
        found = pipe.execute()
        labelled, current = found[0::2], found[1::2]
        for (project, schema), rid in zip(schemas, current, strict=True):
            if rid:
                pipe.get(keys.ranking_part(project, schema, text(rid), "meta"))
            else:
                pipe.echo("")  # keeps the answers in step with the schemas
        rows: list[tuple[str, str, float | None, int]] = []
        for (project, schema), n, meta_raw in zip(schemas, labelled, pipe.execute(), strict=True):
            if not meta_raw:
                rows.append((project, schema, None, int(n)))
                continue
            meta = json.loads(meta_raw)
            published = calendar.timegm(time.strptime(meta["published_at"], "%Y-%m-%dT%H:%M:%SZ"))
            ranked = int(meta.get("labelled_items", meta.get("labelled", 0)))
            rows.append((project, schema, round(max(now - published, 0.0), 3), max(int(n) - ranked, 0)))
        return rows


def start_request() -> None:
    """Take the caller's request id (or make one) and start the clock."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
    g.request_token = telemetry.request_id.set(g.request_id)
    g.request_started = time.perf_counter()


def end_request(response: Response) -> Response:
    """Return the request id, count the request and log one line for it."""
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    started = g.get("request_started")
    if started is None:
        return response
    seconds = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    if current_app.config.get("METRICS") is not False:
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(request.method, route).observe(seconds)
    access_log.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        seconds * 1000,
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


def forget_request(exc: BaseException | None) -> None:
    token = g.pop("request_token", None)
    if token is not None:
        telemetry.request_id.reset(token)


def count_served(sources: list[str]) -> None:
    """Count the items of a batch by the share they came from."""
    if current_app.config.get("METRICS") is False:
        return
    for source, n in Tally(sources).items():  # one write per source, not per item
        ITEMS_SERVED.labels(source).inc(n)


def init_app(app: Flask) -> None:
    """Request ids and counts; registered before authentication so a refused request is
    counted and carries its id too."""
    app.before_request(start_request)
    app.after_request(end_request)
    app.teardown_request(forget_request)
    api.register_blueprint(blp)
