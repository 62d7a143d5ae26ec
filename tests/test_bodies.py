"""Input that cannot be stored and trained on faithfully is refused at the edge with a 422."""

from __future__ import annotations

import json

import pytest

from service.bodies import depth_of, lone_surrogate_path
from workers import defaults

PROJECT = {"name": "wild", "schemas": [{"name": "s", "labels": ["a", "b"]}]}


@pytest.fixture
def project(client):
    assert client.post("/v1/projects", json=PROJECT).status_code == 201


def post_raw(client, path: str, body: str):
    return client.post(path, data=body.encode("utf-8"), content_type="application/json")


def refused(r, *words: str) -> dict:
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/problem+json"
    detail = r.json["detail"]
    for word in words:
        assert word in detail, detail
    return r.json


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"items": [{"id": "a", "text": "\\udc00abc"}]}', "items[0].text"),
        ('{"items": [{"id": "\\ud800", "text": "x"}]}', "items[0].id"),
        ('{"items": [{"id": "a", "text": "x", "metadata": {"k": ["ok", "\\udfff"]}}]}', "metadata.k[1]"),
        ('{"items": [{"id": "a", "text": "x", "metadata": {"\\udc00": 1}}]}', "(a key)"),
    ],
)
def test_lone_surrogates_are_refused_where_they_stand(client, project, body, where):
    refused(post_raw(client, "/v1/projects/wild/items", body), where, "surrogate")
    assert client.get("/v1/projects/wild/items/a").status_code == 404


def test_lone_surrogates_in_labels_are_refused(client, project):
    client.post("/v1/projects/wild/items", json={"items": [{"id": "a", "text": "x"}]})
    body = '{"labels": [{"item": "a", "schema": "s", "value": "a", "annotator": "\\udc00"}]}'
    refused(post_raw(client, "/v1/projects/wild/labels", body), "annotator", "surrogate")


def test_surrogate_pairs_are_text(client, project):
    r = post_raw(client, "/v1/projects/wild/items", '{"items": [{"id": "e", "text": "ok \\ud83d\\ude00"}]}')
    assert r.status_code == 200, r.json
    assert client.get("/v1/projects/wild/items/e").json["text"] == "ok \U0001f600"


def test_vectors_must_fit_float32(client, project):
    r = client.post("/v1/projects/wild/items", json={"items": [{"id": "v", "vector": [1e300, 1.0, 2.0]}]})
    refused(r, "float32")
    ok = client.post("/v1/projects/wild/items", json={"items": [{"id": "v", "vector": [3.4e38, -1.0, 0.0]}]})
    assert ok.status_code == 200


def test_metadata_depth_is_bounded(client, project):
    def nested(depth: int) -> str:
        return '{"a": ' * depth + "1" + "}" * depth

    at_limit = nested(defaults.MAX_METADATA_DEPTH)
    r = post_raw(
        client,
        "/v1/projects/wild/items",
        f'{{"items": [{{"id": "m", "text": "x", "metadata": {at_limit}}}]}}',
    )
    assert r.status_code == 200, r.json
    over = nested(defaults.MAX_METADATA_DEPTH + 1)
    body = f'{{"items": [{{"id": "m", "text": "x", "metadata": {over}}}]}}'
    refused(post_raw(client, "/v1/projects/wild/items", body), "metadata nests")
    # deeper than Python's parser recurses: still a 422, never a 500
    body = f'{{"items": [{{"id": "m", "text": "x", "metadata": {nested(5000)}}}]}}'
    refused(post_raw(client, "/v1/projects/wild/items", body), "too deeply")


def test_helpers():
    assert depth_of(1) == 0 and depth_of({"a": [1, {"b": 2}]}) == 3
    assert lone_surrogate_path(json.loads('{"a": ["x", "\\ud83d\\ude00"]}')) is None
    assert lone_surrogate_path({"a": [{"b": "\udc00"}]}) == "a[0].b"


def test_bodies_over_the_cap_are_refused_with_advice(client, project):
    body = b'{"items": [{"id": "a", "text": "' + b"x" * defaults.MAX_BODY_BYTES + b'"}]}'
    r = client.post("/v1/projects/wild/items", data=body, content_type="application/json")
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/problem+json"
    assert "several requests" in r.json["detail"]
