"""Access control: project keys, the admin key, isolation between projects, roles.

Against a running ``alrank serve`` (gunicorn, RQ workers, its embedded Valkey), over HTTP:
``client`` acts with the admin key it made, ``anonymous`` sends only the headers a test
gives it.
"""

from __future__ import annotations

import base64

import pytest
import requests
import yaml
from procs import ROOT, Serve

SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))

BODY = {
    "schemas": [{"name": "s", "labels": ["a", "b"]}],
    "active_learning": {"min_instances_for_training": 2, "update_frequency": 100, "vectorizer_name": "tfidf"},
}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class Answer:
    """A response, with the parts of the Flask test client's response the tests read."""

    def __init__(self, r: requests.Response) -> None:
        self.status_code = r.status_code
        self.headers = r.raw.headers  # urllib3's: getlist() gives each of a repeated header
        self.json = r.json() if r.content and "json" in r.headers.get("Content-Type", "") else None


class Live:
    """HTTP calls to the running service, shaped as the Flask test client's."""

    def __init__(self, base: str, headers: dict | None = None) -> None:
        self.base, self.headers = base, headers or {}

    def open(self, url: str, method: str = "GET", headers: dict | None = None, json=None) -> Answer:
        sent = {**self.headers, **(headers or {})}
        return Answer(requests.request(method, self.base + url, headers=sent, json=json, timeout=30))

    def get(self, url: str, **kwargs) -> Answer:
        return self.open(url, "GET", **kwargs)

    def post(self, url: str, **kwargs) -> Answer:
        return self.open(url, "POST", **kwargs)

    def delete(self, url: str, **kwargs) -> Answer:
        return self.open(url, "DELETE", **kwargs)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Serve(tmp_path_factory.mktemp("auth") / "data")
    yield s
    s.close()


@pytest.fixture
def client(service):
    return Live(service.base, bearer(service.admin_key))


@pytest.fixture
def anonymous(service):
    return Live(service.base)


@pytest.fixture
def two_projects(client):
    """Projects A and B (made with the admin key), each with items, and their first keys;
    deleted again after the test."""
    keys = {}
    for name in ("A", "B"):
        r = client.post("/v1/projects", json={"name": name, **BODY})
        assert r.status_code == 201, r.json
        keys[name] = r.json["api_key"]["key"]
        items = [{"id": f"i{k}", "text": f"word{k % 2} item {k}"} for k in range(12)]
        assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code == 200
    yield keys
    for name in ("A", "B"):
        client.delete(f"/v1/projects/{name}")


def annotator_key(client, project: str, manager: str, names: list[str]) -> str:
    body = {"name": "laptop", "role": "annotator", "annotators": names}
    r = client.post(f"/v1/projects/{project}/keys", json=body, headers=bearer(manager))
    assert r.status_code == 201, r.json
    return r.json["key"]


def operations(project: str = "A"):
    """Every operation of the API document, with its path filled in for ``project``."""
    for path, item in SPEC["paths"].items():
        url = (
            path.replace("{project}", project)
            .replace("{schema}", "s")
            .replace("{item}", "i1")
            .replace("{job}", "nojob")
            .replace("{sim}", "nosim")
            .replace("{name}", "summary.json")
            .replace("{key_id}", "000000000000")
        )
        for method, operation in item.items():
            if method != "parameters":
                yield method.upper(), url, operation


def test_every_operation_refuses_no_key_a_wrong_key_and_a_revoked_one(anonymous, client, two_projects):
    revoked = annotator_key(client, "A", two_projects["A"], ["ana"])
    key_id = revoked.split("_")[1]
    assert client.delete(f"/v1/projects/A/keys/{key_id}").status_code == 204
    for method, url, operation in operations():
        for headers in ({}, bearer("not-a-key"), bearer("alr_0123456789ab_" + "x" * 43), bearer(revoked)):
            r = anonymous.open(
                url, method=method, headers=headers, json={} if method in ("POST", "PATCH") else None
            )
            if operation.get("security") == []:
                if url.startswith("/potato/"):  # a signed webhook: the signature decides, not a key
                    assert r.status_code == 401
                    assert "Standard-Webhooks" in r.headers.get("WWW-Authenticate", "")
                else:
                    assert r.status_code != 401
                continue
            assert r.status_code == 401, (method, url, headers, r.status_code)
            assert r.headers["Content-Type"] == "application/problem+json"
            assert {"Bearer realm=alrank", "Basic realm=alrank"} <= set(r.headers.getlist("WWW-Authenticate"))


def test_a_key_of_one_project_finds_nothing_of_another(anonymous, two_projects):
    """404, as for a project that does not exist: a key cannot learn which others do."""
    key_of_a = bearer(two_projects["A"])
    for method, url, _ in operations("B"):
        if "/projects/B" not in url:
            continue
        r = anonymous.open(
            url, method=method, headers=key_of_a, json={} if method in ("POST", "PATCH") else None
        )
        assert r.status_code == 404, (method, url, r.status_code)
        missing = anonymous.open(
            url.replace("/projects/B", "/projects/nope"),
            method=method,
            headers=key_of_a,
            json={} if method in ("POST", "PATCH") else None,
        )
        assert missing.status_code == 404 and missing.json["detail"].replace("nope", "B") == r.json["detail"]
    assert anonymous.get("/v1/projects", headers=key_of_a).json == {"projects": ["A"]}


def test_only_the_admin_key_creates_projects(anonymous, client, two_projects):
    r = anonymous.post("/v1/projects", json={"name": "C", **BODY}, headers=bearer(two_projects["A"]))
    assert r.status_code == 403
    assert client.get("/v1/projects").json == {"projects": ["A", "B"]}


def test_an_annotator_key_does_only_annotators_work_as_itself(anonymous, client, two_projects):
    key = bearer(annotator_key(client, "A", two_projects["A"], ["ana"]))
    batch = anonymous.get("/v1/projects/A/next?schema=s&annotator=ana&size=2", headers=key)
    assert batch.status_code == 200
    item = batch.json["items"][0]["id"]
    label = {"item": item, "schema": "s", "value": "a", "annotator": "ana"}
    assert anonymous.post("/v1/projects/A/labels", json={"labels": [label]}, headers=key).status_code == 200
    # as someone else: refused
    assert anonymous.get("/v1/projects/A/next?schema=s&annotator=ben", headers=key).status_code == 403
    other = {**label, "annotator": "ben"}
    assert anonymous.post("/v1/projects/A/labels", json={"labels": [other]}, headers=key).status_code == 403
    release = {"schema": "s", "annotator": "ben"}
    assert anonymous.post("/v1/projects/A/leases/release", json=release, headers=key).status_code == 403
    assert anonymous.delete(f"/v1/projects/A/labels/s/{item}", headers=key).status_code == 403  # everyone's
    assert anonymous.delete(f"/v1/projects/A/labels/s/{item}?annotator=ben", headers=key).status_code == 403
    assert anonymous.delete(f"/v1/projects/A/labels/s/{item}?annotator=ana", headers=key).status_code == 204
    # manager operations: refused
    for method, url, body in (
        ("DELETE", "/v1/projects/A", None),
        ("PATCH", "/v1/projects/A", {"lease_seconds": 60}),
        ("POST", "/v1/projects/A/items", {"items": [{"id": "x", "text": "x"}]}),
        ("DELETE", "/v1/projects/A/items/i1", None),
        ("POST", "/v1/projects/A/train?schema=s", None),
        ("POST", "/v1/projects/A/keys", {"name": "mine"}),
        ("GET", "/v1/projects/A/keys", None),
    ):
        assert anonymous.open(url, method=method, json=body, headers=key).status_code == 403, (method, url)
    assert client.get("/v1/projects/A").status_code == 200


def test_keys_are_listed_without_secrets_and_rotation_takes_effect_at_once(anonymous, client, two_projects):
    manager = bearer(two_projects["A"])
    listed = anonymous.get("/v1/projects/A/keys", headers=manager).json["keys"]
    assert [k["name"] for k in listed] == ["first key"]
    assert all("key" not in k and "digest" not in k for k in listed)
    key_id = listed[0]["id"]
    rotated = anonymous.post(f"/v1/projects/A/keys/{key_id}/rotate", headers=manager)
    assert rotated.status_code == 200 and rotated.json["id"] == key_id
    assert anonymous.get("/v1/projects/A", headers=manager).status_code == 401
    assert anonymous.get("/v1/projects/A", headers=bearer(rotated.json["key"])).status_code == 200


def test_basic_auth_with_the_key_as_password(anonymous, two_projects):
    token = base64.b64encode(f"labelstudio:{two_projects['A']}".encode()).decode()
    assert anonymous.get("/v1/projects/A", headers={"Authorization": f"Basic {token}"}).status_code == 200
    wrong = base64.b64encode(b"labelstudio:nope").decode()
    assert anonymous.get("/v1/projects/A", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_keys_die_with_their_project(anonymous, client, two_projects):
    assert client.delete("/v1/projects/A").status_code == 204
    assert anonymous.get("/v1/projects", headers=bearer(two_projects["A"])).status_code == 401


def test_jobs_and_simulations_belong_to_their_project(anonymous, client, two_projects):
    job = anonymous.post("/v1/projects/A/train?schema=s", headers=bearer(two_projects["A"])).json["job"]
    assert anonymous.get(f"/v1/jobs/{job}", headers=bearer(two_projects["A"])).status_code == 200
    assert anonymous.get(f"/v1/jobs/{job}", headers=bearer(two_projects["B"])).status_code == 404
    rows = [{"text": f"word{k % 2} row {k}", "label": "ab"[k % 2]} for k in range(20)]
    sim = anonymous.post(
        "/v1/simulations", json={"train": rows, "budget": 10}, headers=bearer(two_projects["A"])
    )
    assert sim.status_code == 202
    sim_id = sim.json["id"]
    assert anonymous.get(f"/v1/simulations/{sim_id}", headers=bearer(two_projects["A"])).status_code == 200
    assert anonymous.get(f"/v1/simulations/{sim_id}", headers=bearer(two_projects["B"])).status_code == 404
    source = {"source": {"project": "A", "schema": "s"}}
    assert (
        anonymous.post("/v1/simulations", json=source, headers=bearer(two_projects["B"])).status_code == 404
    )


def test_a_keys_rate_limit_answers_429_with_retry_after(anonymous, client, two_projects):
    body = {"name": "bot", "role": "annotator", "annotators": ["bot"], "rate_limit_per_minute": 3}
    key = client.post("/v1/projects/A/keys", json=body).json["key"]
    answers = [anonymous.get("/v1/projects/A", headers=bearer(key)) for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429 and limited.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # other keys are not held back
    assert anonymous.get("/v1/projects/A", headers=bearer(two_projects["A"])).status_code == 200
