"""Liveness and readiness probes."""

from __future__ import annotations

import logging

import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from redis.exceptions import RedisError
from rq import Worker
from rq.utils import now as utcnow
from rq.worker.base import BaseWorker

from service import examples
from service.bodies import Blueprint
from service.errors import problem_response
from service.extensions import api, backend
from workers import defaults

log = logging.getLogger(__name__)

RETRY = {"Retry-After": str(defaults.RETRY_AFTER_SECONDS)}

blp = Blueprint("health", __name__, description="Probes for orchestrators")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok (alive) or ready"})
    workers = ma.fields.Integer(
        allow_none=True, metadata={"description": "Workers listening on the ranking queue (readiness only)"}
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema, example=examples.HEALTH)
    def get(self):
        """The process is up (it does not touch Redis)."""
        return {"status": "ok", "workers": None}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema, example=examples.READY)
    @blp.alt_response(503, description="Redis unreachable or no worker listening")
    def get(self):
        """Redis answers and at least one worker listens on the queue."""
        b = backend()
        try:
            b.redis.ping()
            n = sum(_alive(w) for w in Worker.all(queue=b.queue))
        except RedisError as exc:
            log.warning("readiness: Redis is unreachable: %s", exc)
            return problem_response(
                503, "Service Unavailable", "Redis is unreachable; retry shortly", headers=RETRY
            )
        if n == 0:
            return problem_response(
                503,
                "Service Unavailable",
                "no worker is listening on the queue; start one with 'alrank worker'",
                headers=RETRY,
            )
        return {"status": "ready", "workers": n}


def _alive(worker: BaseWorker) -> bool:
    """Whether a registered worker has sent a heartbeat lately: a killed worker's
    registration outlives it by a minute or more."""
    if worker.last_heartbeat is None:
        return False
    return (utcnow() - worker.last_heartbeat).total_seconds() < defaults.WORKER_TTL


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
