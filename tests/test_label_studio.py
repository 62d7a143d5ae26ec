"""Label Studio's ML-backend protocol: recorded requests replayed, and the sync jobs against
a Label Studio API double that answers as Label Studio 1.23.2 does.

The recordings (``../shared/integrations/label-studio-1.23.2/requests``) are what a real
Label Studio sent, in order; the tests that replay them are skipped where that folder is
absent. The end-to-end run against a real Label Studio is ``bench/label_studio_e2e.py``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import ADMIN_KEY
from flask import Flask, jsonify, request
from urllib3.util.retry import Retry
from werkzeug.serving import make_server

from workers.label_studio import client as client_module
from workers.label_studio.config import annotation_labels, parse_label_config
from workers.store import Store

RECORDED = (
    Path(__file__).resolve().parents[2] / "shared" / "integrations" / "label-studio-1.23.2" / "requests"
)
CLOSED_PORT_URL = "http://127.0.0.1:9"
"""A Label Studio URL nothing answers on: the sync jobs must fail and say so."""

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="single">'
    '<Choice value="ham"/><Choice value="spam"/></Choices></View>'
)


def recorded(first: int, last: int) -> list[dict]:
    if not RECORDED.is_dir():
        pytest.skip(f"the Label Studio recordings are not at {RECORDED}")
    calls = [json.loads(p.read_text()) for p in sorted(RECORDED.glob("*.json"))]
    return [c for c in calls if first <= c["n"] <= last]


def make_project(client, name: str = "sms", schemas=None) -> str:
    """A project and its backend URL's path (what Label Studio appends its calls to)."""
    body = {
        "name": name,
        "schemas": schemas or [{"name": "label", "labels": ["ham", "spam"]}],
        "active_learning": {
            "min_instances_for_training": 4,
            "update_frequency": 4,
            "vectorizer_name": "tfidf",
        },
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    url = client.get(f"/v1/projects/{name}").json["label_studio"]["backend_url"]
    return urlsplit(url).path


def replay(anonymous, base: str, call: dict):
    """One recorded call, sent as Label Studio sent it (its headers, no alrank key)."""
    headers = {k: v for k, v in call["headers"].items() if k in ("Authorization", "Content-Type")}
    if call["method"] == "GET":
        return anonymous.get(base + call["path"], headers=headers)
    return anonymous.post(base + call["path"], json=call["body"], headers=headers)


@pytest.mark.parametrize("first,last", [(1, 33), (34, 67)], ids=["no-auth", "basic-auth"])
def test_recorded_session_replays(client, anonymous, first, last):
    """Every call a real Label Studio made (connect, list, versions, predict, train, create,
    update and delete annotations, edit the project) is answered in its format."""
    base = make_project(client)
    client.patch("/v1/projects/sms", json={"label_studio": {"url": CLOSED_PORT_URL}})
    for call in recorded(first, last):
        answer = replay(anonymous, base, call)
        assert answer.status_code in (200, 201), (call["n"], call["path"], answer.json)
        if call["path"] == "/health":
            assert answer.json["status"] == "UP"
        elif call["path"] == "/setup":
            assert isinstance(answer.json["model_version"], str)
        elif call["path"] == "/versions":
            assert answer.json["versions"]
        elif call["path"] == "/predict":
            tasks = call["body"]["tasks"]
            assert len(answer.json["results"]) == len(tasks)
            assert all(isinstance(r["score"], int | float) for r in answer.json["results"])
    project = client.get("/v1/projects/sms").json
    link = project["label_studio"]
    assert link["connected"] and link["project"] == 1 and link["text_field"] == "text"
    assert link["url"] == "http://localhost:8012"
    # annotation 1 was created (spam), changed to ham, then deleted; the second one stays
    first_task = client.get("/v1/projects/sms/items/1").json
    assert first_task["labels"]["label"] == {}
    second = [c for c in recorded(first, last) if c["path"] == "/webhook"][-1]["body"]
    item = str(second["annotation"]["task"])
    annotator = f"label-studio-user-{second['annotation']['completed_by']}"
    assert client.get(f"/v1/projects/sms/items/{item}").json["labels"]["label"] == {annotator: "ham"}
    # every task Label Studio sent in /predict joined the pool
    predicted = {
        t["id"] for c in recorded(first, last) if c["path"] == "/predict" for t in c["body"]["tasks"]
    }
    for task in predicted:
        assert client.get(f"/v1/projects/sms/items/{task}").status_code == 200


def test_annotation_update_and_delete_follow_label_studio(client, anonymous):
    """Created, then updated, then deleted: the label follows, and goes with the annotation."""
    base = make_project(client)
    calls = {c["n"]: c for c in recorded(1, 33)}
    assert replay(anonymous, base, calls[24]).status_code == 200  # created: spam
    assert client.get("/v1/projects/sms/items/1").json["labels"]["label"] == {"label-studio-user-1": "spam"}
    assert replay(anonymous, base, calls[26]).status_code == 200  # updated: ham
    assert client.get("/v1/projects/sms/items/1").json["labels"]["label"] == {"label-studio-user-1": "ham"}
    answer = replay(anonymous, base, calls[27])  # deleted
    assert answer.json["removed"] == 1
    assert client.get("/v1/projects/sms/items/1").json["labels"]["label"] == {}


def webhook(anonymous, base, action: str, **body):
    return anonymous.post(base + "/webhook", json={"action": action, **body})


def annotation(
    ann_id: int, task: int, choices: list[str], user: int = 1, name: str = "label", **extra
) -> dict:
    return {
        "id": ann_id,
        "task": task,
        "completed_by": user,
        "result": [{"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": choices}}],
        **extra,
    }


def test_cancelled_annotations_give_no_label(client, anonymous):
    base = make_project(client)
    anonymous.post(base + "/setup", json={"schema": CONFIG, "project": "1.1", "hostname": CLOSED_PORT_URL})
    task = {"id": 5, "data": {"text": "hello"}}
    ann = annotation(9, 5, ["spam"], was_cancelled=True)
    assert webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=task).json["labels"] == 0
    assert client.get("/v1/projects/sms/items/5").json["labels"]["label"] == {}
    # skipping an annotation that had a label takes the label back
    webhook(anonymous, base, "ANNOTATION_CREATED", annotation=annotation(10, 5, ["ham"]), task=task)
    cancelled = annotation(10, 5, ["ham"], was_cancelled=True)
    assert (
        webhook(anonymous, base, "ANNOTATION_UPDATED", annotation=cancelled, task=task).json["removed"] == 1
    )
    assert client.get("/v1/projects/sms/items/5").json["labels"]["label"] == {}


def test_several_choices_blocks_feed_several_schemas(client, anonymous):
    """Each Choices becomes a schema (multiple choice: multi-label); one annotation labels both."""
    base = make_project(client)
    config = (
        '<View><Text name="body" value="$review"/>'
        '<Choices name="label" toName="body"><Choice value="ham"/><Choice value="spam"/></Choices>'
        '<Choices name="topics" toName="body" choice="multiple">'
        '<Choice value="price"/><Choice value="delivery"/><Choice value="quality" alias="q"/>'
        "</Choices></View>"
    )
    answer = anonymous.post(
        base + "/setup", json={"schema": config, "project": "3.99", "hostname": CLOSED_PORT_URL}
    )
    assert answer.status_code == 200
    schemas = {s["name"]: s for s in client.get("/v1/projects/sms").json["schemas"]}
    assert schemas["topics"] == {"name": "topics", "labels": ["price", "delivery", "q"], "multi_label": True}
    ann = {
        "id": 1,
        "task": 7,
        "completed_by": {"id": 4, "email": "a@example.com"},
        "result": [
            {"from_name": "label", "to_name": "body", "type": "choices", "value": {"choices": ["spam"]}},
            {
                "from_name": "topics",
                "to_name": "body",
                "type": "choices",
                "value": {"choices": ["price", "q"]},
            },
        ],
    }
    task = {"id": 7, "data": {"review": "cheap pills, fast delivery"}}
    assert webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=task).status_code == 200
    item = client.get("/v1/projects/sms/items/7").json
    assert item["text"] == "cheap pills, fast delivery"
    assert item["labels"] == {
        "label": {"label-studio-user-4": "spam"},
        "topics": {"label-studio-user-4": ["price", "q"]},
    }


@pytest.mark.parametrize(
    "config,message",
    [
        ("<View><Text name='t' value='$text'/></View>", "no <Choices>"),
        (
            "<View><Image name='i' value='$img'/><Choices name='c' toName='i'><Choice value='a'/>"
            "<Choice value='b'/></Choices></View>",
            "not a <Text>",
        ),
        (
            "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='a'/>"
            "</Choices></View>",
            "two distinct",
        ),
        ("<View><Text", "not XML"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><View>&b;</View>', "not XML"),
    ],
    ids=["no-choices", "image", "one-choice", "broken", "entities"],
)
def test_setup_says_what_alrank_cannot_rank(client, anonymous, config, message):
    base = make_project(client)
    answer = anonymous.post(base + "/setup", json={"schema": config, "project": "1.1"})
    assert answer.status_code == 422
    assert message in answer.json["detail"]


def test_setup_refuses_a_choice_kind_that_contradicts_the_schema(client, anonymous):
    base = make_project(client)
    config = CONFIG.replace('choice="single"', 'choice="multiple"')
    answer = anonymous.post(base + "/setup", json={"schema": config, "project": "1.1"})
    assert answer.status_code == 422 and "single-label" in answer.json["detail"]


def test_the_backend_url_is_the_credential(client, anonymous, app):
    """Wrong or missing secrets get the 404 of a missing project; disconnecting retires the
    URL; only managers see it."""
    base = make_project(client)
    assert anonymous.get(base + "/health").status_code == 200
    assert anonymous.get(base[:-1] + "x/health").status_code == 404
    assert anonymous.get("/ls/sms/health").status_code == 404
    assert anonymous.get(base.replace("/sms/", "/other/") + "/health").status_code == 404
    assert client.delete("/v1/projects/sms/label-studio").status_code == 204
    assert anonymous.get(base + "/health").status_code == 404
    new = urlsplit(client.get("/v1/projects/sms").json["label_studio"]["backend_url"]).path
    assert new != base and anonymous.get(new + "/health").status_code == 200
    key = client.post("/v1/projects/sms/keys", json={"name": "ann", "role": "annotator", "annotators": ["a"]})
    seen = anonymous.get("/v1/projects/sms", headers={"Authorization": f"Bearer {key.json['key']}"})
    assert seen.status_code == 200 and seen.json["label_studio"] is None
    assert ADMIN_KEY not in new


def test_predict_answers_from_the_published_ranking(client, anonymous, run_jobs, redis_conn):
    """Ranked tasks get their rank as score and the model's choice with its confidence;
    new tasks join the pool; nothing is trained by /predict."""
    base = make_project(client)
    anonymous.post(base + "/setup", json={"schema": CONFIG, "project": "1.1", "hostname": CLOSED_PORT_URL})
    texts = ["free prize call now", "see you at lunch", "win cash txt stop", "ok lar joking"] * 5
    tasks = [{"id": k + 1, "data": {"text": f"{t} {k}"}} for k, t in enumerate(texts)]
    first = anonymous.post(base + "/predict", json={"tasks": tasks[:3]})
    assert first.json["model_version"] == "alrank-no-ranking"
    assert client.get("/v1/projects/sms").json["items"] == 3
    anonymous.post(base + "/predict", json={"tasks": tasks})
    assert client.get("/v1/projects/sms").json["items"] == 20
    for k, task in enumerate(tasks[:6]):
        value = "spam" if k % 2 == 0 else "ham"
        ann = annotation(100 + k, task["id"], [value])
        webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=task)
    run_jobs()
    models = client.get("/v1/projects/sms/models?schema=label").json["models"]
    answer = anonymous.post(base + "/predict", json={"tasks": tasks[6:]}).json
    assert len(client.get("/v1/projects/sms/models?schema=label").json["models"]) == len(models)
    ranking = client.get("/v1/projects/sms").json["counts"]["label"]["ranking"]
    assert answer["model_version"] == f"alrank-label-v{models[-1]['version']}-r{ranking['ranking_id']}"
    # the evaluation sample (a fifth of this small pool) is never ranked: its tasks open
    # with no pre-annotation and come after the ranked ones
    sample = set(Store(redis_conn).eval_sample("sms", "label"))
    assert len(sample) == 4
    by_id = dict(zip([str(t["id"]) for t in tasks[6:]], answer["results"], strict=True))
    assert all(by_id[i]["result"] == [] and by_id[i]["score"] == 1.0 for i in sample)
    scores = sorted(r["score"] for i, r in by_id.items() if i not in sample)
    ranked = len(tasks) - 6 - len(sample)
    assert scores == [
        rank / (ranked + 1) for rank in range(1, ranked + 1)
    ]  # within [0, 1], as Label Studio needs
    for i, result in by_id.items():
        if i in sample:
            continue
        (region,) = result["result"]
        assert region["from_name"] == "label" and region["value"]["choices"][0] in ("ham", "spam")
        assert 0.5 <= region["score"] <= 1.0


class FakeLabelStudio:
    """Label Studio's REST API as alrank's workers use it, answering as 1.23.2 does."""

    def __init__(self, tasks: list[dict]) -> None:
        self.tasks = tasks
        self.annotations: dict[int, list[dict]] = {}
        self.predictions: list[dict] = []
        self.model_version = ""
        self.calls: list[str] = []
        self.down = False
        app = Flask("fake-label-studio")

        @app.before_request
        def check():
            self.calls.append(f"{request.method} {request.path}")
            if self.down:
                return jsonify(detail="down"), 503
            if request.headers.get("Authorization") != "Token t0ken":
                return jsonify(detail="Authentication credentials were not provided."), 401
            return None

        @app.get("/api/tasks/")
        def tasks_page():
            page, size = int(request.args["page"]), int(request.args["page_size"])
            chunk = self.tasks[(page - 1) * size : page * size]
            if not chunk and page > 1:
                return jsonify(detail="Invalid page."), 404
            return jsonify(total=len(self.tasks), tasks=chunk)

        @app.get("/api/projects/1/export")
        def export():
            return jsonify(
                [
                    {**t, "annotations": self.annotations[t["id"]]}
                    for t in self.tasks
                    if self.annotations.get(t["id"])
                ]
            )

        @app.post("/api/projects/1/import/predictions")
        def import_predictions():
            # like Label Studio, drop (and only log) predictions whose score is outside [0, 1]
            valid = [p for p in request.json if 0 <= p["score"] <= 1]
            self.predictions += valid
            return jsonify(created=len(valid)), 201

        @app.patch("/api/projects/1")
        def patch_project():
            self.model_version = request.json["model_version"]
            return jsonify(id=1, model_version=self.model_version)

        @app.delete("/api/projects/1/model-versions/")
        def delete_version():
            version = request.json["model_version"]
            self.predictions = [p for p in self.predictions if p["model_version"] != version]
            return jsonify(deleted=True), 200

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def served_order(self) -> list[int]:
        """Tasks as Uncertainty sampling serves them: predictions of the project's version by
        score, lowest first."""
        current = [p for p in self.predictions if p["model_version"] == self.model_version]
        return [p["task"] for p in sorted(current, key=lambda p: p["score"])]


@pytest.fixture
def label_studio():
    fakes = []

    def start(n_tasks: int) -> FakeLabelStudio:
        words = ["free prize call now", "see you at lunch", "win cash txt stop", "ok lar joking"]
        tasks = [{"id": k + 1, "data": {"text": f"{words[k % 4]} {k}"}} for k in range(n_tasks)]
        fakes.append(FakeLabelStudio(tasks))
        return fakes[-1]

    yield start
    for fake in fakes:
        fake.server.shutdown()


def connect(client, anonymous, fake: FakeLabelStudio, head: int = 100) -> str:
    base = make_project(client)
    client.patch("/v1/projects/sms", json={"label_studio": {"head": head}})
    answer = anonymous.post(
        base + "/setup",
        json={"schema": CONFIG, "project": "1.17", "hostname": fake.url, "access_token": "t0ken"},
    )
    assert answer.status_code == 200
    return base


def test_the_pool_flows_in_from_label_studio_in_pages(client, anonymous, run_jobs, label_studio, redis_conn):
    fake = label_studio(2500)
    connect(client, anonymous, fake)
    run_jobs()
    project = client.get("/v1/projects/sms").json
    assert project["items"] == 2500
    tasks = project["label_studio"]["tasks"]
    assert tasks["state"] == "done" and tasks["tasks"] == 2500 and tasks["changed"] == 2500
    assert sum(c.startswith("GET /api/tasks/") for c in fake.calls) == 3  # pages of 1,000
    assert client.get("/v1/projects/sms/items/2500").json["text"] == fake.tasks[-1]["data"]["text"]
    # a task deleted in Label Studio leaves the pool; an unchanged pool is not written again
    fake.tasks.pop()
    webhook(
        anonymous,
        urlsplit(project["label_studio"]["backend_url"]).path,
        "TASKS_DELETED",
        tasks=[{"id": 2500}],
    )
    run_jobs()
    project = client.get("/v1/projects/sms").json
    assert project["items"] == 2499
    assert (
        project["label_studio"]["tasks"]["changed"] == 0 and project["label_studio"]["tasks"]["deleted"] == 1
    )


def test_the_order_flows_out_after_each_ranking(client, anonymous, run_jobs, label_studio, redis_conn):
    """After each published ranking the head goes to Label Studio as predictions of a new
    version with score = rank, the project switches to it, and the old version is removed:
    what Label Studio would serve next is alrank's top-ranked unlabelled task."""
    fake = label_studio(60)
    base = connect(client, anonymous, fake, head=20)
    run_jobs()
    order = client.get("/v1/projects/sms").json["label_studio"]["order"]
    assert order["state"] == "done" and order["pushed"] == 20
    assert fake.model_version == order["version"] and len(fake.predictions) == 20
    for round_ in range(3):
        head = fake.served_order()[:4]
        for k, task in enumerate(head):
            ann = annotation(1000 + 10 * round_ + k, task, ["spam" if task % 2 else "ham"])
            webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=fake.tasks[task - 1])
        run_jobs()
        link = client.get("/v1/projects/sms").json["label_studio"]
        assert fake.model_version == link["order"]["version"]
        assert len(fake.predictions) == 20  # the previous version's predictions are gone
        top = client.get("/v1/projects/sms/ranking?schema=label&limit=60").json
        assert top["ranking_id"] == link["order"]["ranking_id"]
        # between the evaluation and exploration items, the ranking's order
        store = Store(redis_conn)
        drawn, sample = store.random_draws("sms", "label"), set(store.eval_sample("sms", "label"))
        served = [t for t in fake.served_order() if str(t) not in drawn | sample]
        assert served[:5] == [int(i["id"]) for i in top["items"] if i["id"] not in drawn][:5]
        assert all(0 < p["score"] < 1 for p in fake.predictions)  # Label Studio drops others
        for p in fake.predictions:
            if str(p["task"]) in sample:  # evaluation tasks open with no pre-annotation
                assert p["result"] == []
            else:
                assert p["result"][0]["value"]["choices"][0] in ("ham", "spam")
    assert "v" in fake.model_version and fake.model_version.startswith("alrank-label-v")


def test_start_training_reconciles_every_annotation(client, anonymous, run_jobs, label_studio):
    """START_TRAINING reads all annotations: missing labels are added, labels of annotations
    gone from Label Studio are removed, and the schema retrains."""
    fake = label_studio(30)
    base = connect(client, anonymous, fake)
    run_jobs()
    webhook(anonymous, base, "ANNOTATION_CREATED", annotation=annotation(1, 1, ["spam"]), task=fake.tasks[0])
    for task in range(2, 12):
        fake.annotations[task] = [annotation(task, task, ["ham" if task % 3 else "spam"], user=2)]
    answer = webhook(anonymous, base, "START_TRAINING", project={"id": 1})
    assert answer.status_code == 200 and answer.json["job"]
    run_jobs()
    link = client.get("/v1/projects/sms").json["label_studio"]
    assert link["annotations"]["annotations"] == 10 and link["annotations"]["removed"] == 1
    assert client.get("/v1/projects/sms/items/1").json["labels"]["label"] == {}
    assert client.get("/v1/projects/sms/items/3").json["labels"]["label"] == {"label-studio-user-2": "spam"}
    assert client.get("/v1/projects/sms/models?schema=label").json["models"]


def test_label_studio_down_never_blocks_labelling(client, anonymous, run_jobs, label_studio, monkeypatch):
    """With Label Studio unreachable the sync jobs fail and say why on the project, while
    labels keep arriving and rankings keep being published; the next ranking pushes again."""
    monkeypatch.setattr(
        client_module, "RETRIES", Retry(total=1, backoff_factor=0.01, status_forcelist=(503,))
    )
    fake = label_studio(20)
    base = connect(client, anonymous, fake)
    fake.down = True
    run_jobs()
    link = client.get("/v1/projects/sms").json["label_studio"]
    assert link["tasks"]["state"] == "failed" and "503" in link["tasks"]["error"]
    fake.down = False
    anonymous.post(base + "/predict", json={"tasks": fake.tasks})
    fake.down = True
    for k in range(6):
        ann = annotation(k + 1, k + 1, ["spam" if k % 2 else "ham"])
        assert (
            webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=fake.tasks[k]).status_code
            == 200
        )
    run_jobs()
    project = client.get("/v1/projects/sms").json
    assert project["counts"]["label"]["model_version"] is not None
    assert project["label_studio"]["order"]["state"] == "failed"
    fake.down = False
    for k in range(6, 10):
        ann = annotation(k + 1, k + 1, ["spam" if k % 2 else "ham"])
        webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=fake.tasks[k])
    run_jobs()
    assert client.get("/v1/projects/sms").json["label_studio"]["order"]["state"] == "done"
    assert fake.served_order()


def test_annotation_labels_map_choices_and_ignore_other_controls():
    config = parse_label_config(CONFIG)
    ann = {
        "result": [
            {"from_name": "label", "type": "choices", "value": {"choices": ["spam"]}},
            {"from_name": "other", "type": "choices", "value": {"choices": ["x"]}},
            {"from_name": "label", "type": "labels", "value": {"labels": ["ham"]}},
        ]
    }
    assert annotation_labels(config, ann) == {"label": "spam"}
    assert (
        annotation_labels(
            config, {"result": [{"from_name": "label", "type": "choices", "value": {"choices": ["nope"]}}]}
        )
        == {}
    )


def test_a_choices_block_added_later_is_ranked_at_once(client, anonymous, run_jobs):
    base = make_project(client)
    anonymous.post(base + "/setup", json={"schema": CONFIG, "project": "1.1", "hostname": CLOSED_PORT_URL})
    anonymous.post(
        base + "/predict", json={"tasks": [{"id": k, "data": {"text": f"text {k}"}} for k in range(1, 6)]}
    )
    run_jobs()
    wider = CONFIG.replace(
        "</View>",
        '<Choices name="lang" toName="text"><Choice value="en"/><Choice value="fr"/></Choices></View>',
    )
    project = {"id": 1, "label_config": wider}
    assert webhook(anonymous, base, "PROJECT_UPDATED", project=project).status_code == 200
    run_jobs()
    counts = client.get("/v1/projects/sms").json["counts"]
    # 5 tasks, one of them the evaluation sample's (a fifth of a pool this small)
    assert counts["lang"]["ranking"] is not None and counts["lang"]["ranking"]["ranked"] == 4


def test_predict_past_the_published_head_asks_the_model(client, anonymous, run_jobs, redis_conn, monkeypatch):
    """A ranking of a large pool publishes its head only: a task past it still opens with
    the model's choice, scored after the head; labelled and evaluation tasks get none."""
    from workers import defaults

    monkeypatch.setattr(defaults, "RANKING_HEAD_MIN", 3)
    monkeypatch.setattr(defaults, "RANKING_HEAD_MARGIN", 0)
    monkeypatch.setattr(defaults, "EXPLORE_DEPTH", 2)
    base = make_project(client)
    anonymous.post(base + "/setup", json={"schema": CONFIG, "project": "1.1", "hostname": CLOSED_PORT_URL})
    texts = ["free prize call now", "see you at lunch", "win cash txt stop", "ok lar joking"] * 5
    tasks = [{"id": k + 1, "data": {"text": f"{t} {k}"}} for k, t in enumerate(texts)]
    anonymous.post(base + "/predict", json={"tasks": tasks})
    for k, task in enumerate(tasks[:6]):
        ann = annotation(100 + k, task["id"], ["spam" if k % 2 == 0 else "ham"])
        webhook(anonymous, base, "ANNOTATION_CREATED", annotation=ann, task=task)
    run_jobs()
    meta = Store(redis_conn).ranking_meta("sms", "label")
    assert meta is not None and meta["head"] == 3 and meta["ranked"] == 10
    answer = anonymous.post(base + "/predict", json={"tasks": tasks}).json
    by_id = dict(zip([str(t["id"]) for t in tasks], answer["results"], strict=True))
    sample = set(Store(redis_conn).eval_sample("sms", "label"))
    labelled = {str(t["id"]) for t in tasks[:6]}
    assert all(by_id[i]["result"] == [] for i in sample | labelled)
    ranked = {i: r for i, r in by_id.items() if i not in sample | labelled}
    assert len(ranked) == 10 and all(len(r["result"]) == 1 for r in ranked.values())
    scores = sorted(r["score"] for r in ranked.values())
    assert scores[:3] == [1 / 11, 2 / 11, 3 / 11]
    # the random list's two items keep their ranks; the rest are scored just past the head
    assert set(scores[3:]) <= {r / 11 for r in range(4, 11)} and scores.count(4 / 11) >= 10 - 3 - 2
