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
