"""Access control at the edge: every request names an API key, except the probes and the
API document.

The key goes in ``Authorization: Bearer <key>``, or as the password of HTTP Basic (what
Label Studio can send). A missing or wrong key gets 401 with ``WWW-Authenticate``. A key of
one project gets 404 on everything of another, so it cannot learn which projects exist; a
valid key whose role does not allow an operation gets 403. The roles are described in
:mod:`workers.access`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from flask import Flask, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, TooManyRequests, Unauthorized

from service.extensions import backend
from workers.access import Principal, admin_matches, backend_secret, digest, hashing_key, parse_token
from workers.exceptions import NotFound

PUBLIC = frozenset({"health.Health", "health.Ready", "api-docs.openapi_json"})
"""Endpoints anyone may call: liveness, readiness and the API document."""

BACKEND_BLUEPRINT = "label_studio"
"""Label Studio's ML-backend calls: authenticated by the secret in the backend URL."""

SIGNED_BLUEPRINTS = frozenset({BACKEND_BLUEPRINT, "potato"})
"""Calls from tools that cannot send a key: the secret in the URL (Label Studio) or the
signature of the body (Potato's webhooks, checked by the view) stands in for it."""

ROLE_NEEDED: dict[tuple[str, str], str] = {
    ("projects.Projects", "POST"): "admin",
    ("projects.PotatoProjects", "POST"): "admin",
    ("projects.Projects", "GET"): "annotator",
    ("projects.Project", "GET"): "annotator",
    ("items.Item", "GET"): "annotator",
    ("labels.Labels", "POST"): "annotator",
    ("labels.Label", "DELETE"): "annotator",
    ("batches.Next", "GET"): "annotator",
    ("batches.Release", "POST"): "annotator",
    ("predictions.Predict", "POST"): "annotator",
    ("jobs.JobStatus", "GET"): "annotator",
    ("jobs.Models", "GET"): "annotator",
    ("metrics.Metrics", "GET"): "annotator",
    ("metrics.MetricsPlot", "GET"): "annotator",
    ("pages.IndexPage", "GET"): "annotator",
    ("telemetry.Metrics", "GET"): "admin",
    ("transfer.Import", "POST"): "admin",
}
"""The least role each operation needs; every other operation needs a manager key (or the
admin key)."""

RATE_WINDOW_SECONDS = 60
"""A key's rate limit counts requests in windows of this many seconds."""


def _challenges() -> list[WWWAuthenticate]:
    return [WWWAuthenticate("Bearer", {"realm": "alrank"}), WWWAuthenticate("Basic", {"realm": "alrank"})]


def principal() -> Principal:
    """Who the current request acts as."""
    return g.principal


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return password or None
    return None


def resolve(token: str) -> Principal | None:
    """The principal a key stands for, or None for a key that is not (or no longer) valid."""
    admin_key = current_app.config.get("ADMIN_KEY")
    if admin_key and admin_matches(admin_key, token):
        return Principal("admin")
    parsed = parse_token(token)
    if parsed is None or not admin_key:
        return None
    key_id, secret = parsed
    record = backend().store.key_record(key_id)
    if record is None:
        return None
    if not hmac.compare_digest(record["digest"], digest(hashing_key(admin_key), secret)):
        return None
    return Principal(
        record["role"],
        record["project"],
        key_id,
        tuple(record.get("annotators") or ()),
        record.get("rate_limit_per_minute"),
    )


def check_secret(project: str, secret: str) -> None:
    """A Label Studio backend URL's secret is this project's (``service.label_studio``);
    otherwise the same 404 as for no project."""
    nonce = backend().store.label_studio(project).get("nonce")
    expected = backend_secret(current_app.config.get("ADMIN_KEY"), project, nonce) if nonce else ""
    if not nonce or not hmac.compare_digest(expected.encode(), secret.encode()):
        raise NotFound(f"no project named {project!r}")


def authenticate() -> None:
    if not current_app.config["AUTH"]:
        g.principal = Principal("admin")
        return
    if request.endpoint is None or request.endpoint in PUBLIC or request.method == "OPTIONS":
        return
    if request.blueprint == BACKEND_BLUEPRINT:
        # Label Studio's calls carry the project's secret in the URL instead of a key
        args = request.view_args or {}
        check_secret(args["project"], args["secret"])
        g.principal = Principal("manager", args["project"])
        return
    if request.blueprint == "potato":
        return  # the view checks the delivery's signature against the project's secret
    token = presented_key()
    if token is None:
        raise Unauthorized(
            "send an API key: 'Authorization: Bearer <key>', or HTTP Basic with the key as the password",
            www_authenticate=_challenges(),
        )
    who = resolve(token)
    if who is None:
        raise Unauthorized(
            "the API key is not valid: it is mistyped, or was revoked or rotated",
            www_authenticate=_challenges(),
        )
    g.principal = who
    if who.per_minute is not None and who.key_id is not None:
        limit(who.key_id, who.per_minute)
    project = (request.view_args or {}).get("project")
    if project is not None and not who.may_see(project):
        raise NotFound(f"no project named {project!r}")  # the same answer as for none at all
    needed = ROLE_NEEDED.get((request.endpoint, request.method), "manager")
    if needed == "admin" and not who.is_admin:
        raise Forbidden("only the admin key may do this")
    if needed == "manager" and who.role == "annotator":
        raise Forbidden("this needs a manager key; this key is an annotator's")


def limit(key_id: str, per_minute: int) -> None:
    """A fixed one-minute window per key, counted in Redis so every API process shares it;
    past the limit, 429 with the seconds to the next window in Retry-After."""
    now = time.time()
    window = int(now // RATE_WINDOW_SECONDS)
    if backend().store.count_request(key_id, window, RATE_WINDOW_SECONDS) > per_minute:
        retry = int((window + 1) * RATE_WINDOW_SECONDS - now) + 1
        raise TooManyRequests(
            f"this key may make {per_minute} requests a minute; retry in {retry} s",
            retry_after=retry,
        )


def require_annotator(name: str) -> None:
    """An annotator key acts only as the annotators it is bound to."""
    if not principal().may_act_as(name):
        raise Forbidden(f"this key may act only as {list(principal().annotators)}, not as {name!r}")


def require_project(project: str) -> None:
    """A resource outside the request path (a job, a simulation) belongs to ``project``."""
    if not principal().may_see(project):
        raise NotFound("no such resource")


def init_app(app: Flask) -> None:
    if app.config["AUTH"] and not app.config.get("ADMIN_KEY"):
        app.logger.warning(
            "ALRANK_ADMIN_KEY is not set: no key is valid, so every request but the probes gets "
            "401; set it (alrank serve makes one), or run with ALRANK_AUTH=false on a laptop"
        )
    app.before_request(authenticate)
