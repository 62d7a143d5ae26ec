"""Request bodies: JSON that can be stored and trained on faithfully, or a clear 422.

JSON may spell a lone UTF-16 surrogate (``"\\udc00"``): Python decodes it to a string that
cannot be encoded as UTF-8, so it would be stored and then break every retrain of its
project. JSON may also nest deeper than Python's parser recurses. Both are refused here, as
the body is parsed, with a message that says what to fix; the item schema bounds how deep
metadata may nest (``limits.MAX_METADATA_DEPTH``).
"""

from __future__ import annotations

import re
from typing import Any

import flask
import flask_smorest
import webargs.core
from webargs.flaskparser import FlaskParser, is_json_request

from workers import limits
from workers.exceptions import InvalidInput

# a \uD800-\uDFFF escape: the only way a JSON text can carry a surrogate (raw ones are not
# valid UTF-8, and Flask refuses those); most bodies have none, so most skip the walk
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lone_surrogate_path(value: Any) -> str | None:
    """Where in ``value`` a string (or a key) holds a lone surrogate, as a dotted path."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return path or "(body)"
        elif isinstance(node, dict):
            for key, child in node.items():
                where = f"{path}.{key}" if path else str(key)
                if not _encodes(key):
                    return (path + "." if path else "") + "(a key)"
                stack.append((child, where))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{k}]") for k, child in enumerate(node))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def depth_of(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays (a scalar: 0)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def checked_loads(raw: bytes) -> Any:
    """Parse a JSON body, refusing what could not be stored as it was sent."""
    try:
        value = webargs.core.parse_json(raw)
    except RecursionError:
        # Python's parser recurses once per level and gives up near a thousand
        raise InvalidInput(
            "the JSON body nests objects and arrays too deeply to parse; metadata may nest "
            f"at most {limits.MAX_METADATA_DEPTH} levels"
        ) from None
    if _SURROGATE_ESCAPE.search(raw):
        path = lone_surrogate_path(value)
        if path is not None:
            raise InvalidInput(
                f"{path}: holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its "
                "pair), which is not valid Unicode text; send the character itself or a valid "
                "surrogate pair",
                {path: ["lone surrogate"]},
            )
    return value


class CheckedParser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies through :func:`checked_loads`."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return webargs.core.missing
        # not cached on the request: werkzeug keeps the request in the WSGI environ until
        # the response is closed, and a cached 30 MB body would outlive the view
        return checked_loads(req.get_data(cache=False))


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with :class:`CheckedParser`."""

    ARGUMENTS_PARSER = CheckedParser()
