"""The project page rendered by the app itself (``service/pages.py``), for what needs no
browser: an empty project, several schemas, hostile names, and the sign-in answers.
``test_page.py`` opens it in Chromium."""

from __future__ import annotations

import base64

from workers.store import Store

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"lead:{key}".encode()).decode()}


def create(client, name: str, schemas: list[dict]) -> str:
    answer = client.post("/v1/projects", json={"name": name, "schemas": schemas})
    assert answer.status_code == 201, answer.json
    return answer.json["api_key"]["key"]


def test_an_empty_project_says_what_comes_next(client, anonymous):
    key = create(client, "fresh", [{"name": "topic", "labels": ["a", "b"]}])
    page = anonymous.get("/v1/projects/fresh/page", headers={**basic(key), **BROWSER})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<title>fresh · alrank</title>" in html
    assert "No model yet" in html and "No ranking yet" in html and "No labels yet" in html
    assert "Too early to tell" in html and "Keep labelling" in html


def test_each_schema_has_its_tab_and_an_unknown_one_shows_the_first(client, anonymous, run_jobs):
    key = create(
        client,
        "two",
        [{"name": "topic", "labels": ["a", "b"]}, {"name": "tone", "labels": ["calm", "angry"]}],
    )
    items = [
        {"id": f"i{k}", "text": f"text number {k} about {'sport' if k % 2 else 'rain'}"} for k in range(40)
    ]
    assert client.post("/v1/projects/two/items", json={"items": items}).status_code == 200
    run_jobs()
    html = anonymous.get("/v1/projects/two/page?schema=tone", headers=basic(key)).get_data(as_text=True)
    assert 'href="?schema=topic"' in html and 'class="on">tone</a>' in html.replace(
        'href="?schema=tone" ', ""
    )
    assert "/v1/projects/two/metrics.png?schema=tone" in html
    fallback = anonymous.get("/v1/projects/two/page?schema=nope", headers=basic(key)).get_data(as_text=True)
    assert "/v1/projects/two/metrics.png?schema=topic" in fallback


def test_names_from_annotators_are_shown_as_text_never_as_markup(client, anonymous, redis_conn, run_jobs):
    key = create(client, "wild", [{"name": "topic", "labels": ["a", "b"]}])
    items = [{"id": f"i{k}", "text": f"item {k}"} for k in range(10)]
    client.post("/v1/projects/wild/items", json={"items": items})
    run_jobs()
    hostile = "<script>alert(1)</script>"
    labels = [{"item": "i1", "schema": "topic", "value": "a", "annotator": hostile}]
    assert client.post("/v1/projects/wild/labels", json={"labels": labels}).status_code == 200
    assert hostile in Store(redis_conn).activity("wild", "topic", 0.0)
    html = anonymous.get("/v1/projects/wild/page", headers=basic(key)).get_data(as_text=True)
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_browser_is_asked_to_sign_in_and_a_program_gets_a_problem(client, anonymous):
    create(client, "mine", [{"name": "topic", "labels": ["a", "b"]}])
    other = create(client, "theirs", [{"name": "topic", "labels": ["a", "b"]}])
    page = anonymous.get("/v1/projects/mine/page", headers=BROWSER)
    assert page.status_code == 401 and page.mimetype == "text/html"
    # a browser prompts for the Basic scheme (the Bearer one beside it is for programs)
    assert any(c.startswith("Basic ") for c in page.headers.get_all("WWW-Authenticate"))
    assert "Sign in" in page.get_data(as_text=True)
    program = anonymous.get("/v1/projects/mine/page")
    assert program.status_code == 401 and program.mimetype == "application/problem+json"
    wrong = anonymous.get("/v1/projects/mine/page", headers={**basic("alr_nope_nope"), **BROWSER})
    assert wrong.status_code == 401 and "Sign in" in wrong.get_data(as_text=True)
    # another project's key: the project is not there for it, as in the API
    refused = anonymous.get("/v1/projects/mine/page", headers={**basic(other), **BROWSER})
    assert refused.status_code == 404 and "no such project" in refused.get_data(as_text=True)
    listed = anonymous.get("/v1/page", headers=basic(other)).get_data(as_text=True)
    assert ">theirs</a>" in listed and ">mine</a>" not in listed


def test_the_annotator_table_shows_agreement_and_reliability(client, anonymous, run_jobs):
    key = create(client, "agree", [{"name": "topic", "labels": ["a", "b"]}])
    items = [{"id": f"i{k}", "text": f"{'sport' if k % 2 else 'rain'} item {k}"} for k in range(40)]
    client.post("/v1/projects/agree/items", json={"items": items})
    right = {f"i{k}": "b" if k % 2 else "a" for k in range(40)}
    labels = [
        {"item": i, "schema": "topic", "value": v, "annotator": who}
        for who in ("ann", "bo")
        for i, v in right.items()
        if int(i[1:]) < 30
    ]
    # a third annotator who disagrees on every item they share
    labels += [
        {
            "item": f"i{k}",
            "schema": "topic",
            "value": "b" if right[f"i{k}"] == "a" else "a",
            "annotator": "cy",
        }
        for k in range(10)
    ]
    assert client.post("/v1/projects/agree/labels", json={"labels": labels}).status_code == 200
    run_jobs()
    html = anonymous.get("/v1/projects/agree/page", headers=basic(key)).get_data(as_text=True)
    assert "On 30 items labelled by two or more" in html and "Fleiss' kappa" in html
    rows = {r.split("</td>")[0]: r for r in html.split("<tr><td>")[1:]}
    # cy agrees with the others' majority nowhere
    assert '<td class="num">0.00</td>' in rows["cy"]
    assert "label issues</a>" in html
