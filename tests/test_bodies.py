"""Input that cannot be stored and trained on faithfully is refused at the edge with a 422."""

from __future__ import annotations

import json

import pytest

from service.bodies import depth_of, lone_surrogate_path
from workers import limits

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

    at_limit = nested(limits.MAX_METADATA_DEPTH)
    r = post_raw(
        client,
        "/v1/projects/wild/items",
        f'{{"items": [{{"id": "m", "text": "x", "metadata": {at_limit}}}]}}',
    )
    assert r.status_code == 200, r.json
    over = nested(limits.MAX_METADATA_DEPTH + 1)
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
    body = b'{"items": [{"id": "a", "text": "' + b"x" * limits.MAX_BODY_BYTES + b'"}]}'
    r = client.post("/v1/projects/wild/items", data=body, content_type="application/json")
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/problem+json"
    assert "several requests" in r.json["detail"]


def _items_strategy():
    """Upload bodies, valid and not: the keys an item may have and some it may not, values
    of the right types and of wrong ones, lengths and numbers at and past the limits."""
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5)
    )
    metadata = st.recursive(
        st.dictionaries(st.text(max_size=3), scalars, max_size=3),
        lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=2),
        max_leaves=6,
    )
    item = st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=4), st.integers(), st.just("x" * (limits.MAX_ID_CHARS + 1))),
            "text": st.one_of(st.none(), st.text(max_size=8), st.integers()),
            "vector": st.one_of(
                st.none(),
                st.lists(st.one_of(st.floats(), st.integers(-(2**130), 2**130), st.booleans()), max_size=4),
                st.text(max_size=2),
            ),
            "metadata": st.one_of(metadata, st.none(), st.lists(st.integers(), max_size=2)),
            "other": scalars,
        },
    )
    plain = st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=4)},
        optional={
            "text": st.text(max_size=8),
            "vector": st.lists(
                st.one_of(st.floats(-1e30, 1e30), st.integers(-(2**40), 2**40)), min_size=1, max_size=4
            ),
            "metadata": metadata,
        },
    ).filter(lambda i: "text" in i or "vector" in i)
    loose = st.fixed_dictionaries(
        {"items": st.lists(item, min_size=0, max_size=4)}, optional={"more": scalars}
    )
    valid = st.fixed_dictionaries({"items": st.lists(plain, min_size=1, max_size=4)})
    # a valid body with one item made loose: most refused bodies differ from a valid one once
    mixed = st.tuples(valid, item).map(lambda pair: {"items": [*pair[0]["items"], pair[1]]})
    return st.one_of(valid, mixed, loose)


def test_the_plain_upload_check_equals_marshmallows():
    """Wherever the plain check loads a body it gives what marshmallow gives; a body it
    declines, marshmallow loads or refuses with its messages."""
    import marshmallow as ma
    from hypothesis import given, settings

    from service.items import ItemsUploadSchema, plain_upload

    schema = ItemsUploadSchema()
    seen = {"plain": 0, "declined": 0}

    @settings(max_examples=600, deadline=None)
    @given(_items_strategy())
    def check(body):
        plain = plain_upload(body)
        try:
            full = ma.Schema.load(schema, body)
        except ma.ValidationError:
            assert plain is None
            seen["declined"] += 1
            return
        if plain is not None:
            # as JSON: 2 and 2.0 are equal in Python, not in what is stored
            assert json.dumps(plain, sort_keys=True) == json.dumps(full, sort_keys=True)
            seen["plain"] += 1

    check()
    assert seen["plain"] > 50 and seen["declined"] > 50  # both ways were exercised


def test_a_plainly_valid_upload_skips_marshmallow_and_stores_the_same(client, project, monkeypatch):
    import service.items

    body = {
        "items": [
            {"id": "v1", "text": "a text", "vector": [1, 2.5], "metadata": {"k": [1, {"x": None}]}},
            {"id": "v2", "vector": [0, -1e30]},
        ]
    }
    assert service.items.plain_upload(body) is not None
    name = PROJECT["name"]
    r = client.post(f"/v1/projects/{name}/items", json=body)
    assert r.status_code == 200 and r.json["created"] == 2
    got = client.get(f"/v1/projects/{name}/items/v1").json
    assert got["text"] == "a text" and got["metadata"] == {"k": [1, {"x": None}]}
    bad = client.post(f"/v1/projects/{name}/items", json={"items": [{"id": "v3", "vector": [True]}]})
    assert bad.status_code == 422 and "vector" in json.dumps(bad.json)
