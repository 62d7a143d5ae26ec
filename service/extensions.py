"""Extensions created unbound and bound to an app in ``create_app``."""

from __future__ import annotations

import http

from flask import Flask, current_app
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer

from service.errors import PROBLEM_TYPE, ProblemSchema, handle_http_exception
from workers import defaults
from workers.store import Store


class ProblemApi(Api):
    """flask-smorest's Api, documenting and sending errors as RFC 9457 problems."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):  # type: ignore[override]
        return handle_http_exception(error)

    def _register_responses(self):
        """flask-smorest's error responses, documented as application/problem+json."""
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status == 429:
                response["description"] = "The key's rate limit is spent; retry after Retry-After seconds"
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
            if status == 503:
                response["description"] = "Storage (Redis) unreachable; retry after Retry-After seconds"
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


api = ProblemApi()


class Backend:
    """The Redis connection, the data layer over it and the job queue, for one app.

    A Redis that is down or hung costs a request at most ``REDIS_TIMEOUT_SECONDS`` (then a
    503 with Retry-After), not redis-py's default of several 5 s tries. A connection that
    broke while idle (Redis restarted) is replaced once, at once."""

    def __init__(self, redis_url: str) -> None:
        self.redis = Redis.from_url(
            redis_url,
            health_check_interval=30,
            socket_timeout=defaults.REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=defaults.REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        self.store = Store(self.redis)
        self.queue = Queue(defaults.QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)
        self.simulation_queue = Queue(
            defaults.SIMULATION_QUEUE_NAME, connection=self.redis, serializer=JSONSerializer
        )


def init_backend(app: Flask) -> None:
    app.extensions["alrank"] = Backend(app.config["REDIS_URL"])


def backend() -> Backend:
    return current_app.extensions["alrank"]
