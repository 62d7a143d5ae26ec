"""The project page, as a project lead sees it: a real ``alrank serve``, 300 labels, and the
page opened in headless Chromium (Debian's ``chromium`` package, driven by Playwright; no
browser is downloaded)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from procs import CHROMIUM_ARGS, Annotator, Serve, wait_until

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium package (apt-get install chromium)"
)
LABELS = 300


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Serve(tmp_path_factory.mktemp("page") / "data")
    yield s
    s.close()


@pytest.fixture(scope="module")
def project(served):
    """A project after 300 labels from two annotators, and a second project."""
    admin = Annotator(served.base, served.admin_key, project="reviews")
    admin.create(n=2000, seed=3, eval_fraction=0.1, eval_size=120, update_frequency=20)
    other = {"name": "other", "schemas": [{"name": "x", "labels": ["a", "b"]}]}
    assert admin.call("POST", "/v1/projects", json=other).status_code == 201
    manager = admin.call("POST", "/v1/projects/reviews/keys", json={"name": "lead", "role": "manager"}).json()
    assert manager["key"].startswith("alr_")
    wait_until(lambda: admin.served_version() is not None or _ranked(admin), 60, "the cold start")
    while len(admin.acked) < LABELS:
        admin.label_round(size=10, annotator="ana" if len(admin.acked) % 20 else "ben")
        time.sleep(0.05)
    # the last labels, fewer than update_frequency, wait for the next trigger: ask for it,
    # and wait for the whole job (its label assessment and gain run after the model is out)
    train = admin.call("POST", "/v1/projects/reviews/train", params={"schema": "topic"})
    assert train.status_code == 202
    job = train.json()["job"]
    finished = lambda: admin.call("GET", f"/v1/jobs/{job}").json()["status"] == "finished"  # noqa: E731
    wait_until(finished, 120, "the last job")

    def trained_on_all() -> bool:
        models = admin.call("GET", "/v1/projects/reviews/models?schema=topic").json()["models"]
        return bool(models) and models[-1]["training_size"] + models[-1]["evaluation"]["size"] >= LABELS

    wait_until(trained_on_all, 120, "a model trained on every label")
    return {"admin": admin, "manager_key": manager["key"]}


def _ranked(admin: Annotator) -> bool:
    counts = admin.call("GET", "/v1/projects/reviews").json()["counts"]["topic"]
    return counts["ranking"] is not None


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_the_page_shows_what_the_json_says(served, project, browser):
    admin = project["admin"]
    metrics = admin.call("GET", "/v1/projects/reviews/metrics?schema=topic").json()
    context = browser.new_context(
        http_credentials={"username": "lead", "password": project["manager_key"]},
        viewport={"width": 1200, "height": 900},
    )
    page = context.new_page()
    answer = page.goto(f"{served.base}/v1/projects/reviews/page")
    assert answer is not None and answer.status == 200
    assert page.title() == "reviews · alrank"
    last = metrics["curve"][-1]
    assert page.inner_text("#accuracy") == f"{100 * last['accuracy']:.1f}%"
    lo, hi = last["accuracy_interval"]
    assert page.inner_text("#accuracy-interval") == f"95%: {100 * lo:.1f}\u2013{100 * hi:.1f}%"
    assert page.inner_text("#evaluation-size") == f"{last['evaluation_size']:,}"
    assert page.inner_text("#gain-statement") == metrics["gain"]["statement"]
    assert page.inner_text("#labelled") == f"{LABELS:,}"
    rows = page.locator("#models tr")
    assert rows.count() == len(metrics["curve"]) + 1  # a row per version and the header
    assert "ana" in page.inner_text("#annotators") and "ben" in page.inner_text("#annotators")
    # the curve image loads, through the same sign-in
    loaded = page.eval_on_selector("#curve", "img => img.complete && img.naturalWidth")
    assert loaded and loaded > 300
    shots = os.environ.get("ALRANK_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "project-page.png"), full_page=True)
    context.close()


def test_the_page_reads_on_a_phone(served, project, browser):
    context = browser.new_context(
        http_credentials={"username": "lead", "password": project["manager_key"]},
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
    )
    page = context.new_page()
    assert page.goto(f"{served.base}/v1/projects/reviews/page").status == 200
    # nothing wider than the screen but the tables, which scroll inside their cards
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    width = page.eval_on_selector("#curve", "img => img.getBoundingClientRect().width")
    assert 300 <= width <= 390
    shots = os.environ.get("ALRANK_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "project-page-phone.png"), full_page=False)
    context.close()


def test_a_wrong_key_gets_the_sign_in_answer_and_another_project_is_refused(served, project, browser):
    wrong = browser.new_context(http_credentials={"username": "lead", "password": "alr_nope_nope"})
    page = wrong.new_page()
    answer = page.goto(f"{served.base}/v1/projects/reviews/page")
    assert answer is not None and answer.status == 401
    assert "Basic" in answer.headers["www-authenticate"]
    assert "Sign in" in page.inner_text("h1") and "API key" in page.inner_text("main")
    wrong.close()
    mine = browser.new_context(http_credentials={"username": "lead", "password": project["manager_key"]})
    page = mine.new_page()
    answer = page.goto(f"{served.base}/v1/projects/other/page")
    assert answer is not None and answer.status == 404
    assert "no such project" in page.inner_text("main")
    # the index lists the key's own project only
    assert page.goto(f"{served.base}/v1/page").status == 200
    assert page.locator("table a").all_inner_texts() == ["reviews"]
    mine.close()
