"""The committed openapi.yaml is exactly what the code generates."""

from __future__ import annotations

import yaml

from service.openapi import DEFAULT_PATH, spec_dict


def test_committed_openapi_matches_code():
    committed = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert committed == spec_dict(), (
        "openapi.yaml is out of date: run 'python -m service.openapi' and commit the result"
    )


def test_spec_is_served(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert "/v1/projects/{project}/next" in r.json["paths"]


def test_every_error_response_is_a_problem():
    spec = spec_dict()
    responses = spec["components"]["responses"]
    assert {"DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"} <= set(responses)
    for response in responses.values():
        content = response["content"]
        assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_operation_carries_an_example():
    """A request body or a response of every operation shows an example: a JSON body, the
    text an export or /metrics answers, or the problem document of an operation whose
    success has no body."""
    bare = []
    for path, operations in spec_dict()["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            contents = list((op.get("requestBody") or {}).get("content", {}).values())
            for response in op.get("responses", {}).values():
                contents += list((response.get("content") or {}).values())
            if not any("example" in c or "examples" in c for c in contents):
                bare.append(f"{method.upper()} {path}")
    assert bare == []
