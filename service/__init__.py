"""alrank's HTTP edge: the Flask app factory.

``create_app`` reads its defaults, then ``ALRANK_*`` environment variables (and
``REDIS_URL``), then the ``config`` mapping a caller (a test) passes.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Flask

from workers import defaults, limits

API_VERSION = "1.0.0"


def default_config() -> dict[str, Any]:
    """The app's settings before ``ALRANK_*`` variables and the caller's ``config``."""
    return {
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "API_TITLE": "alrank",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "security": [{"bearer": []}, {"basic": []}],
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key: a project's (alr_...) or the admin key",
                    },
                    "basic": {
                        "type": "http",
                        "scheme": "basic",
                        "description": "Any user name, the API key as the password (for Basic-only tools)",
                    },
                }
            },
            "info": {
                "description": (
                    "Active-learning ranking for data annotation: send the pool and the "
                    "labels, ask for the items most worth labelling next. Every answer carries "
                    "X-Request-ID: the caller's, when it sent one, or a new one; the jobs a "
                    "request queues log it."
                )
            },
        },
        "MAX_CONTENT_LENGTH": limits.MAX_BODY_BYTES,
        "AUTH": True,
        "ADMIN_KEY": None,
        "DEFAULT_BATCH_SIZE": defaults.BATCH_SIZE,
        "METRICS": True,
        "METRICS_PROJECTS": 50,
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(default_config())
    app.config.from_prefixed_env("ALRANK")
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    from service import (
        auth,
        batches,
        errors,
        health,
        items,
        jobs,
        keys,
        label_studio,
        labels,
        metrics,
        pages,
        potato,
        predictions,
        projects,
        quality,
        simulations,
        telemetry,
        transfer,
    )
    from service.extensions import api, init_backend

    init_backend(app)
    api.init_app(app)
    errors.init_app(app)
    telemetry.init_app(app)  # before authentication: refused requests get an id and a count
    auth.init_app(app)
    modules = (
        projects,
        keys,
        items,
        labels,
        batches,
        predictions,
        jobs,
        metrics,
        quality,
        simulations,
        health,
        label_studio,
        potato,
        pages,
        transfer,
    )
    for module in modules:
        module.init_app(app)
    public = frozenset(
        re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)  # as the OpenAPI document writes it
        for rule in app.url_map.iter_rules()
        if rule.endpoint in auth.PUBLIC or rule.endpoint.split(".")[0] in auth.SIGNED_BLUEPRINTS
    )
    errors.document_errors(api.spec, public)
    return app
