"""One error format for the whole API: RFC 9457 ``application/problem+json``.

Every error, whether raised by the engine, by request parsing or by Flask itself, leaves
through ``problem_response``. A response never carries a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, Response, json
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from workers import defaults, limits
from workers.exceptions import AlrankError, Conflict, InvalidInput, NotFound, NotTrainable

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"

_STATUS_OF = {NotFound: 404, Conflict: 409, InvalidInput: 422, NotTrainable: 409}


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(metadata={"description": "URI naming the kind of problem"})
    title = ma.fields.String(metadata={"description": "Short summary of the kind of problem"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong and what to do about it"})
    errors = ma.fields.Dict(metadata={"description": "Per-field reasons, when input was refused"})


def answers_404(blp, detail: str):
    """Document an operation's 404 with an example problem document: the example of an
    operation whose success has no JSON body (a 204, a picture, a page)."""
    example = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": detail}
    return blp.alt_response(
        404, schema=ProblemSchema, content_type=PROBLEM_TYPE, description="Not Found", example=example
    )


def problem_response(
    status: int,
    title: str,
    detail: str,
    errors: dict | None = None,
    headers: dict | list[tuple[str, str]] | None = None,
) -> Response:
    body: dict = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    for k, v in pairs:
        resp.headers.add(k, v)  # add: a 401 carries one WWW-Authenticate per scheme
    return resp


def _flatten(messages, path: str = "") -> list[str]:
    """Marshmallow's nested messages as 'field.sub: reason' lines."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path}: {m}" if path else m for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, path)]
    return [f"{path}: {messages}"]


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    # werkzeug's own headers (Allow on a 405, WWW-Authenticate on a 401), then the view's
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    headers += list((data.get("headers") or {}).items())
    if messages:
        # webargs nests messages under the request location ('json', 'query')
        if isinstance(messages, dict) and len(messages) == 1:
            location = next(iter(messages))
            if location in ("json", "query", "form", "headers", "path"):
                messages = messages[location]
        lines = _flatten(messages)
        if lines == ["Invalid JSON body."]:
            return problem_response(
                400, "Malformed JSON", "the request body is not valid JSON; check quoting and commas"
            )
        detail = "the request was refused: " + "; ".join(lines[:20])
        if len(lines) > 20:
            detail += f"; and {len(lines) - 20} more"
        return problem_response(
            status, error.name, detail, messages if isinstance(messages, dict) else {"_": messages}, headers
        )
    detail = data.get("message") or error.description or error.name
    if status == 404 and detail == HTTPException.description:
        detail = "no such resource"
    if status == 413:
        detail = (
            f"the request body is larger than {limits.MAX_BODY_BYTES // 2**20} MiB; "
            "send the items or labels in several requests"
        )
    return problem_response(status, error.name, str(detail), headers=headers)


def handle_domain_error(error: AlrankError) -> Response:
    status = next((code for cls, code in _STATUS_OF.items() if isinstance(error, cls)), 400)
    titles = {404: "Not Found", 409: "Conflict", 422: "Unprocessable Content"}
    details = getattr(error, "details", None)
    return problem_response(status, titles.get(status, "Bad Request"), str(error), details)


def handle_redis_error(error: RedisError) -> Response:
    log.error("storage error: %s", error)
    return problem_response(
        503,
        "Service Unavailable",
        "the service cannot reach its storage right now; retry shortly",
        headers={"Retry-After": str(defaults.RETRY_AFTER_SECONDS)},
    )


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error")
    return problem_response(
        500, "Internal Server Error", "the service failed to handle this request; it has been logged"
    )


_METHODS = ("get", "put", "post", "patch", "delete")

PATH_PARAMETERS = {
    "project": "The project's name",
    "schema": "The schema's name",
    "item": "The item's id (it may hold slashes)",
    "job": "The job's id, from the response that started it",
    "sim": "The simulation's id, from the response that started it",
    "name": "A result file: curves.csv, curves.png or summary.json",
    "secret": "The secret of the project's Label Studio backend URL",
}
"""What each path parameter names, for the OpenAPI document."""


def document_errors(spec, public_paths: frozenset[str] = frozenset()) -> None:
    """State in the OpenAPI document what each path parameter names, and every error each
    operation can answer, by rule: 401, 403 and 429 (a key's rate limit) from all but
    ``public_paths`` (which need no key), a 503
    (storage unreachable, with Retry-After) from all, a 404 from those with a path parameter,
    a 400 (malformed JSON) and a 413 (body too large) from those with a body, and a 409
    from creating a project that exists. 422s for bad arguments are stated by flask-smorest."""
    for path, item in spec._paths.items():
        for parameter in item.get("parameters", []):
            if parameter.get("in") == "path" and parameter["name"] in PATH_PARAMETERS:
                parameter.setdefault("description", PATH_PARAMETERS[parameter["name"]])
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            codes = [503]
            if path not in public_paths:
                codes += [401, 403, 429]
            else:
                operation["security"] = []  # open to anyone
            if "{" in path:
                codes.append(404)
            if "requestBody" in operation:
                codes += [400, 413, 422]
            if method == "post" and path == "/v1/projects":
                codes.append(409)
            responses = operation.setdefault("responses", {})
            for code in codes:
                if str(code) not in responses:
                    responses[str(code)] = spec.components.get_ref("response", HTTPStatus(code).name)


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(AlrankError, handle_domain_error)
    app.register_error_handler(RedisError, handle_redis_error)
    app.register_error_handler(Exception, handle_unexpected)
