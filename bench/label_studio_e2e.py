"""alrank behind a real Label Studio 1.23.2, end to end, driven as annotators drive it.

    python bench/label_studio_e2e.py [--ls-venv DIR] [--repeats 3] [--annotations 200]

The script installs ``label-studio==1.23.2`` in a venv of its own (unless ``--ls-venv``
points at one), starts it on loopback with a data dir of its own, and starts ``alrank
serve`` beside it. For each run it creates a Label Studio text-classification project,
imports the SMS spam train set (``../shared/datasets/sms_spam``), and then annotates as an
annotator does: take ``GET /api/projects/{id}/next``, submit the true label through Label
Studio's API, repeat.

- The ``alrank`` arm connects alrank through Label Studio's own API (``POST /api/ml`` with
  the project's backend URL) and sets ``Uncertainty sampling``. After each retrain it checks
  that the task Label Studio serves next is the head of the order alrank wrote (the lowest
  score among the current version's predictions on unlabelled tasks). It checks that served
  tasks carry alrank's pre-annotation, except the evaluation sample's, which carry none;
  that the evaluation sample reaches the annotators at its share (``eval_fraction``, 10%)
  and measures the model; that every annotation reached alrank, that a deleted annotation's
  label is gone, and that Label Studio's "train" (START_TRAINING) makes alrank read every
  annotation.
- The ``uniform`` arm is the same project with Label Studio's own ``Uniform sampling``.

Figures: test-split accuracy and macro-F1 of a TF-IDF + logistic regression model trained on
the first 50, 100 and 200 labels each arm collected (the same model for both, so the figure
is about which tasks were labelled), and the time from submitting an annotation that
triggers a retrain to Label Studio serving the new order. Medians over ``--repeats`` runs,
with their spread. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procs import free_port, wait_until  # noqa: E402
from workers import defaults  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "sms_spam"
LS_VERSION = "1.23.2"
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="single">'
    '<Choice value="ham"/><Choice value="spam"/></Choices></View>'
)
CHECKPOINTS = (50, 100, 200)
UPDATE_FREQUENCY = 10
EVAL_FRACTION = defaults.EVAL_FRACTION
"""alrank's default share of the evaluation sample in every order it writes."""
"""alrank's default: a retrain every 10 labels."""


def load(split: str) -> list[dict]:
    with gzip.open(DATA / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def ensure_label_studio(venv: Path) -> Path:
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        print(f"installing label-studio=={LS_VERSION} into {venv} (a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}"],
            check=True,
        )
    return exe


class Service:
    """A process this script started, and a session for its HTTP API."""

    name = "service"
    proc: subprocess.Popen
    http: requests.Session
    url: str

    def call(self, method: str, path: str, **kwargs):
        answer = self.http.request(method, self.url + path, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise RuntimeError(f"{self.name} {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class LabelStudio(Service):
    """A real Label Studio on loopback, with its REST API."""

    name = "Label Studio"

    def call(self, method: str, path: str, **kwargs):
        # Label Studio on SQLite answers 500 ("database is locked") while another request
        # writes, as when alrank imports predictions: a person would reload, so do we
        for _ in range(5):
            try:
                return super().call(method, path, **kwargs)
            except RuntimeError as exc:
                if ": 500 " not in str(exc) or method not in ("GET", "PATCH"):
                    raise
                time.sleep(1.0)
        return super().call(method, path, **kwargs)

    def __init__(self, exe: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        data = workdir / "label-studio"
        data.mkdir()
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(data),
            "LABEL_STUDIO_USERNAME": "admin@example.com",
            "LABEL_STUDIO_PASSWORD": "adminpass123",
            "LABEL_STUDIO_USER_TOKEN": self.token,
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
        }
        self.log = open(workdir / "label-studio.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(exe),
                "start",
                "--no-browser",
                "--internal-host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--data-dir",
                str(data),
                "--username",
                env["LABEL_STUDIO_USERNAME"],
                "--password",
                env["LABEL_STUDIO_PASSWORD"],
                "--user-token",
                self.token,
                "--enable-legacy-api-token",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {self.token}"
        wait_until(self._up, 300, "Label Studio to start", every=1)

    def _up(self) -> bool:
        try:
            return self.http.get(self.url + "/api/projects", timeout=5).status_code == 200
        except requests.RequestException:
            return False


class Alrank(Service):
    """``alrank serve`` on a data dir of its own, as a user runs it."""

    name = "alrank"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = self.data = workdir / "alrank"
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.log = open(workdir / "alrank.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", f"--data-dir={data}", f"--port={self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 120, "alrank to be ready", every=0.5)
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer " + (data / "admin-key").read_text().strip()

    def _ready(self) -> bool:
        try:
            return requests.get(self.url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def eval_sample(self, project: str, schema: str) -> set[str]:
        """The schema's evaluation sample, read from the embedded Redis (no API lists it)."""
        import redis

        from workers.store import Store

        conn = redis.Redis(unix_socket_path=str(self.data / "redis" / "redis.sock"))
        try:
            return set(Store(conn).eval_sample(project, schema))
        finally:
            conn.close()


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"  CHECK FAILED: {what}", flush=True)


def new_ls_project(
    ls: LabelStudio, title: str, sampling: str, train: list[dict]
) -> tuple[int, dict[int, str], dict[int, str]]:
    """A Label Studio project with the train set imported; returns its id, and per task id
    the true label and the data set's id."""
    project = ls.call("POST", "/api/projects", json={"title": title, "label_config": LABEL_CONFIG})
    pid = project["id"]
    ls.call("PATCH", f"/api/projects/{pid}", json={"sampling": sampling})
    ls.call(
        "POST", f"/api/projects/{pid}/import", json=[{"text": r["text"], "sms_id": r["id"]} for r in train]
    )
    truth_by_sms = {r["id"]: r["label"] for r in train}
    truth: dict[int, str] = {}
    sms: dict[int, str] = {}
    page = 1
    while True:
        doc = ls.call("GET", "/api/tasks/", params={"project": pid, "page": page, "page_size": 1000})
        for t in doc["tasks"]:
            truth[t["id"]] = truth_by_sms[t["data"]["sms_id"]]
            sms[t["id"]] = t["data"]["sms_id"]
        if page * 1000 >= doc["total"]:
            break
        page += 1
    return pid, truth, sms


def annotate(ls: LabelStudio, task_id: int, value: str) -> int:
    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [value]}}]
    answer = ls.call(
        "POST",
        f"/api/tasks/{task_id}/annotations",
        json={"result": result, "was_cancelled": False, "lead_time": 1},
    )
    return answer["id"]


def check_evaluation(al: Alrank, checks: Checks, name: str, evaluated: int, n: int, where: str) -> dict:
    """Check that the evaluation sample's items were ``evaluated`` of the ``n`` served (its
    share, within 3) and that a retrain measures the model on every one of them; returns
    that model version."""
    checks.check(
        abs(evaluated - EVAL_FRACTION * n) <= 3,
        f"{where}: {evaluated} of {n} items served were evaluation items (share {EVAL_FRACTION})",
    )
    job = al.call("POST", f"/v1/projects/{name}/train", params={"schema": "label"})["job"]
    wait_until(lambda: al.call("GET", f"/v1/jobs/{job}")["status"] == "finished", 120, "a retrain")
    model = al.call("GET", f"/v1/projects/{name}/models", params={"schema": "label"})["models"][-1]
    checks.check(
        model["evaluation"]["size"] == evaluated,
        f"{where}: the model was measured on {model['evaluation']['size']} evaluation labels of "
        f"the {evaluated} served",
    )
    return model


def head_of_order(ls: LabelStudio, pid: int, version: str | None, labelled: set[int]) -> int | None:
    """The unlabelled task whose prediction of ``version`` has the lowest score: the first
    of the order alrank wrote (Label Studio serves the lowest score first)."""
    predictions = ls.call("GET", "/api/predictions/", params={"project": pid})
    mine = [p for p in predictions if p["model_version"] == version and p["task"] not in labelled]
    return min(mine, key=lambda p: p["score"])["task"] if mine else None


def version_of(ranking: dict) -> str:
    return f"alrank-label-v{ranking.get('model_version') or 0}-r{ranking['ranking_id']}"


def run_alrank(ls: LabelStudio, al: Alrank, train: list[dict], n: int, run: int, checks: Checks) -> dict:
    name = f"sms-{run}"
    pid, truth, sms = new_ls_project(ls, f"alrank order {run}", "Uncertainty sampling", train)
    al.call(
        "POST", "/v1/projects", json={"name": name, "schemas": [{"name": "label", "labels": ["ham", "spam"]}]}
    )
    backend_url = al.call("GET", f"/v1/projects/{name}")["label_studio"]["backend_url"]
    started = time.monotonic()
    ml = ls.call("POST", "/api/ml", json={"project": pid, "url": backend_url, "title": "alrank"})

    def project() -> dict:
        return al.call("GET", f"/v1/projects/{name}")

    def pushed() -> str | None:
        """The version Label Studio orders by, once it is alrank's current ranking's."""
        ranking = project()["counts"]["label"]["ranking"]
        current = ls.call("GET", f"/api/projects/{pid}")["model_version"]
        return current if ranking and current == version_of(ranking) else None

    wait_until(lambda: project()["items"] == len(truth), 300, "alrank to read every task", every=0.5)
    wait_until(pushed, 300, "the first order in Label Studio", every=0.2)
    first_order_seconds = time.monotonic() - started
    print(
        f"  run {run}: {len(truth)} tasks read and the first order served in {first_order_seconds:.1f} s",
        flush=True,
    )

    sample = al.eval_sample(name, "label")
    labelled: list[tuple[int, str]] = []
    annotation_ids: list[int] = []
    freshness: list[float] = []
    top_matches = top_checks = preannotated = with_model = evaluated = eval_suggested = 0
    for k in range(1, n + 1):
        task = ls.call("GET", f"/api/projects/{pid}/next")
        version = ls.call("GET", f"/api/projects/{pid}")["model_version"]
        mine = [p for p in task.get("predictions", []) if p.get("model_version") == version]
        suggested = bool(mine and mine[0].get("result"))
        if str(task["id"]) in sample:
            evaluated += 1
            eval_suggested += suggested
        elif project()["counts"]["label"]["model_version"] is not None:
            with_model += 1
            preannotated += suggested
        value = truth[task["id"]]
        t0 = time.monotonic()
        annotation_ids.append(annotate(ls, task["id"], value))
        labelled.append((task["id"], value))
        wait_until(
            lambda: project()["counts"]["label"]["with_any_label"] >= len(labelled),
            30,
            f"annotation {k} in alrank",
        )
        if k % UPDATE_FREQUENCY == 0:

            def fresh() -> bool:
                ranking = project()["counts"]["label"]["ranking"]
                return bool(ranking and ranking.get("labelled", 0) >= len(labelled) and pushed())

            try:
                wait_until(fresh, 120, f"the order after annotation {k}")
            except AssertionError as exc:
                checks.check(False, str(exc))
                continue
            freshness.append(time.monotonic() - t0)
            served = ls.call("GET", f"/api/projects/{pid}/next")
            top_checks += 1
            top_matches += served["id"] == head_of_order(ls, pid, pushed(), {t for t, _ in labelled})
    checks.check(
        top_matches == top_checks,
        f"run {run}: Label Studio served the head of alrank's order after {top_matches} of "
        f"{top_checks} retrains",
    )
    checks.check(
        preannotated == with_model,
        f"run {run}: {preannotated} of {with_model} ranked tasks served with a model "
        "carried alrank's pre-annotation",
    )
    checks.check(eval_suggested == 0, f"run {run}: {eval_suggested} evaluation tasks carried a suggestion")
    share = evaluated / n
    measured = check_evaluation(al, checks, name, evaluated, n, f"run {run}: Label Studio")
    # every annotation reached alrank, with its value and annotator
    wrong = 0
    for task_id, value in labelled:
        labels = al.call("GET", f"/v1/projects/{name}/items/{task_id}")["labels"]["label"]
        wrong += labels != {"label-studio-user-1": value}
    checks.check(
        wrong == 0, f"run {run}: {len(labelled) - wrong} of {len(labelled)} annotations reached alrank"
    )
    # a deleted annotation is gone
    gone_task = labelled[0][0]
    ls.call("DELETE", f"/api/annotations/{annotation_ids[0]}")
    try:
        wait_until(
            lambda: al.call("GET", f"/v1/projects/{name}/items/{gone_task}")["labels"]["label"] == {},
            30,
            "the deleted annotation's label to go",
        )
        checks.check(True, "")
    except AssertionError as exc:
        checks.check(False, f"run {run}: {exc}")
    # Label Studio's train button: alrank reads every annotation
    ls.call("POST", f"/api/ml/{ml['id']}/train")
    try:
        synced = wait_until(
            lambda: (project()["label_studio"].get("annotations") or {}).get("annotations") == n - 1,
            60,
            "START_TRAINING to read every annotation",
        )
        checks.check(bool(synced), "")
    except AssertionError as exc:
        checks.check(False, f"run {run}: {exc}")
    print(
        f"  run {run}: head of the order served after {top_matches}/{top_checks} retrains; "
        f"pre-annotated {preannotated}/{with_model}; evaluation tasks {evaluated}/{n} ({share:.0%}), "
        f"accuracy on them {measured['evaluation']['accuracy']:.3f}; "
        f"freshness median {statistics.median(freshness):.2f} s",
        flush=True,
    )
    return {
        "labels": [(sms[task], value) for task, value in labelled],
        "freshness": freshness,
        "first_order_seconds": first_order_seconds,
        "evaluation_tasks": evaluated,
    }


def run_uniform(ls: LabelStudio, train: list[dict], n: int, run: int) -> dict:
    pid, truth, sms = new_ls_project(ls, f"uniform {run}", "Uniform sampling", train)
    labelled = []
    for _ in range(n):
        task = ls.call("GET", f"/api/projects/{pid}/next")
        annotate(ls, task["id"], truth[task["id"]])
        labelled.append((sms[task["id"]], truth[task["id"]]))
    return {"labels": labelled}


def alrank_features(train_texts: list[str], test_texts: list[str]):
    """The service's default features (``defaults.VECTORIZER_NAME``), fitted on the pool
    (the train texts) as a ranking job fits them, and the test texts under the same fit."""
    from workers import defaults
    from workers.features import EMBEDDINGS, PARTS, fit_tfidf, transform_tfidf

    train_parts, test_parts = [], []
    for part in PARTS[defaults.VECTORIZER_NAME]:
        if part in EMBEDDINGS:
            train_parts.append(sp.csr_matrix(EMBEDDINGS[part](train_texts, None)))
            test_parts.append(sp.csr_matrix(EMBEDDINGS[part](test_texts, None)))
        else:
            fitted = fit_tfidf(part, train_texts)
            assert fitted is not None
            train_parts.append(fitted[0])
            test_parts.append(transform_tfidf(part, fitted[1], test_texts))
    return sp.hstack(train_parts, format="csr"), sp.hstack(test_parts, format="csr")


class Scorer:
    """Test-split accuracy and macro-F1 of two models trained on the first N labels an arm
    collected: alrank's own (its default features and classifier, ``workers.models``), and
    an independent TF-IDF + logistic regression (scikit-learn's defaults)."""

    def __init__(self, train: list[dict], test: list[dict]) -> None:
        self.train_texts = [r["text"] for r in train]
        self.row = {r["id"]: k for k, r in enumerate(train)}
        self.test_texts = [r["text"] for r in test]
        self.truth = [r["label"] for r in test]
        self.x_train, self.x_test = alrank_features(self.train_texts, self.test_texts)

    def __call__(self, labels: list[tuple[str, str]]) -> dict[str, dict[int, tuple[float, float]]]:
        from workers.models import train_single_label

        out: dict[str, dict[int, tuple[float, float]]] = {"alrank model": {}, "TF-IDF + LR": {}}
        for n in CHECKPOINTS:
            if n > len(labels):
                continue
            ids = [sms for sms, _ in labels[:n]]
            ys = [v for _, v in labels[:n]]
            if len(set(ys)) < 2:
                for name in out:
                    out[name][n] = self._measure([ys[0]] * len(self.truth))
                continue
            model = train_single_label(self.x_train[[self.row[i] for i in ids]], ys)
            proba = model.predict_proba(self.x_test)
            out["alrank model"][n] = self._measure([model.classes[k] for k in proba.argmax(axis=1)])
            vec = TfidfVectorizer(sublinear_tf=True)
            lr = LogisticRegression(max_iter=2000).fit(
                vec.fit_transform([self.train_texts[self.row[i]] for i in ids]), ys
            )
            out["TF-IDF + LR"][n] = self._measure(list(lr.predict(vec.transform(self.test_texts))))
        return out

    def _measure(self, predicted: list[str]) -> tuple[float, float]:
        return accuracy_score(self.truth, predicted), f1_score(self.truth, predicted, average="macro")


def report(results: dict, train: list[dict], test: list[dict]) -> None:
    scorer = Scorer(train, test)
    per: dict = {}
    for arm, runs in results.items():
        for r in runs:
            for model, by_n in scorer(r["labels"]).items():
                for n, s in by_n.items():
                    per.setdefault(model, {}).setdefault(arm, {}).setdefault(n, []).append(s)

    def cell(values: list[float]) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    print(
        f"SMS spam test split ({len(test)} messages, {sum(t == 'spam' for t in scorer.truth)} spam); "
        f"median (min-max) of {len(results['alrank'])} runs per arm"
    )
    for model, arms in per.items():
        print()
        print(f"{model} trained on the labels each arm collected")
        print(
            "| labels | alrank order: accuracy | Uniform sampling: accuracy "
            "| alrank order: macro-F1 | Uniform sampling: macro-F1 |"
        )
        print("|---|---|---|---|---|")
        for n in CHECKPOINTS:
            a, u = arms.get("alrank", {}).get(n, []), arms.get("uniform", {}).get(n, [])
            print(
                f"| {n} | {cell([x[0] for x in a])} | {cell([x[0] for x in u])} | "
                f"{cell([x[1] for x in a])} | {cell([x[1] for x in u])} |"
            )
    fresh = [f for r in results["alrank"] for f in r["freshness"]]
    print()
    print(
        f"annotation in Label Studio -> new order served, {len(fresh)} retrains: "
        f"median {statistics.median(fresh):.2f} s, p90 {np.percentile(fresh, 90):.2f} s, "
        f"max {max(fresh):.2f} s"
    )
    first = [r["first_order_seconds"] for r in results["alrank"]]
    print(
        f"connect -> {len(train)} tasks read and the first order served: "
        f"median {statistics.median(first):.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ls-venv", type=Path, default=Path(tempfile.gettempdir()) / f"alrank-label-studio-{LS_VERSION}"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--annotations", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument("--out", type=Path, help="write every run's labels and timings here (JSON)")
    parser.add_argument("--score", type=Path, help="only score the runs saved in this --out file")
    args = parser.parse_args()
    train, test = load("train"), load("test")
    if args.score:
        report(json.loads(args.score.read_text()), train, test)
        return 0
    exe = ensure_label_studio(args.ls_venv)
    workdir = Path(tempfile.mkdtemp(prefix="alrank-ls-e2e-"))
    print(f"work dir {workdir}", flush=True)
    ls = LabelStudio(exe, workdir)
    al = Alrank(workdir)
    checks = Checks()
    results: dict[str, list[dict]] = {"alrank": [], "uniform": []}
    try:
        for run in range(1, args.repeats + 1):
            print(f"alrank order, run {run}", flush=True)
            results["alrank"].append(run_alrank(ls, al, train, args.annotations, run, checks))
            print(f"uniform sampling, run {run}", flush=True)
            results["uniform"].append(run_uniform(ls, train, args.annotations, run))
    finally:
        al.close()
        ls.close()
    if args.out:
        args.out.write_text(json.dumps(results))
    print()
    report(results, train, test)
    print(f"checks: {checks.passed} passed, {len(checks.failed)} failed")
    for failure in checks.failed:
        print(f"  FAILED: {failure}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
