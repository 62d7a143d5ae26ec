"""alrank behind a real Potato 2.12.1, end to end, driven as an annotator drives it.

    python bench/potato_e2e.py [--potato-venv DIR] [--annotations 60]

The script installs ``potato-annotation==2.12.1`` in a venv of its own (unless
``--potato-venv`` points at one), starts ``alrank serve``, creates the project from the same
Potato config Potato runs (``POST /v1/projects/potato``), uploads the SMS spam train set to
alrank, and points the project's feed at Potato's watched data directory. Potato starts with
``assignment_strategy: priority``, ``triage.signal_field: alrank_priority`` and a webhook
to alrank signed with the project's secret.

Then it annotates through Potato's own HTTP interface as an annotator's browser does: log in,
read the current instance, save the true label (``/updateinstance``), go to the next. It
checks that every annotation reached alrank through Potato's signed webhooks, that after
each retrain the item Potato serves next is the first of the feed file alrank wrote for the
new ranking, and that the evaluation sample reaches the annotator at its share
(``eval_fraction``) and measures the model. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from label_studio_e2e import Alrank, Checks, Service, check_evaluation, load  # noqa: E402

from tests.procs import free_port, wait_until  # noqa: E402

POTATO_VERSION = "2.12.1"
UPDATE_FREQUENCY = 10


def ensure_potato(venv: Path) -> Path:
    exe = venv / "bin" / "potato"
    if not exe.exists():
        print(f"installing potato-annotation=={POTATO_VERSION} into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"potato-annotation=={POTATO_VERSION}"], check=True
        )
    return exe


def potato_config(incoming: Path, webhook: dict, port: int) -> dict:
    """The Potato config: alrank's project is created from the same file."""
    return {
        "annotation_task_name": "sms-potato",
        "task_dir": ".",
        "output_annotation_dir": "./annotation_output",
        "output_annotation_format": "jsonl",
        "data_files": ["data/intro.jsonl"],
        "data_directory": str(incoming),
        "watch_data_directory": True,
        "watch_poll_interval": 1,
        "item_properties": {"id_key": "id", "text_key": "text"},
        "user_config": {"allow_all_users": True, "users": []},
        "require_password": False,
        "assignment_strategy": "priority",
        "triage": {"enabled": True, "signal_field": "alrank_priority", "order": "desc"},
        "max_annotations_per_user": -1,
        "max_annotations_per_item": 1,
        "annotation_schemes": [
            {
                "annotation_type": "radio",
                "name": "label",
                "description": "Is this SMS spam?",
                "labels": ["ham", "spam"],
            }
        ],
        "active_learning": {
            "enabled": True,
            "update_frequency": UPDATE_FREQUENCY,
            "min_instances_for_training": 10,
            "random_sample_percent": 0,
            "classifier_name": "sklearn.linear_model.LogisticRegression",
        },
        "webhooks": {"enabled": True, "endpoints": [webhook]},
        "site_dir": "default",
        "port": port,
    }


class Potato(Service):
    name = "Potato"

    def __init__(self, exe: Path, workdir: Path, config: dict) -> None:
        self.port = config["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "data").mkdir(exist_ok=True)
        # what annotators see before alrank's first ranking arrives: one welcome item
        (workdir / "data" / "intro.jsonl").write_text(
            json.dumps(
                {"id": "intro", "text": "Welcome: label whether each message is spam.", "alrank_priority": -1}
            )
            + "\n"
        )
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        self.log = open(workdir / "potato.log", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "start", "config.yaml", "-p", str(self.port)],
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = requests.Session()
        wait_until(self._up, 120, "Potato to start", every=1)

    def _up(self) -> bool:
        try:
            return requests.get(self.url + "/", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def login(self, user: str) -> None:
        self.http.post(self.url + "/login", data={"email": user, "pass": ""}, timeout=30)
        self.http.get(self.url + "/annotate", timeout=30)

    def current(self) -> str:
        return self.call("GET", "/api/current_instance")["instance_id"]

    def label(self, instance: str, value: str) -> None:
        answer = self.call(
            "POST",
            "/updateinstance",
            json={"instance_id": instance, "annotations": {f"label:::{value}": "true"}},
        )
        if answer.get("status") != "success":
            raise RuntimeError(f"Potato did not store the annotation: {answer}")

    def advance(self, instance: str) -> None:
        self.http.post(
            self.url + "/annotate", json={"action": "next_instance", "instance_id": instance}, timeout=30
        )


def fed_sources(incoming: Path) -> dict[str, str]:
    """How alrank chose each item of the feed files it wrote (``alrank_source``)."""
    out = {}
    for path in sorted(incoming.glob("alrank-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out[row["id"]] = row["alrank_source"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--potato-venv", type=Path, default=Path(tempfile.gettempdir()) / f"alrank-potato-{POTATO_VERSION}"
    )
    parser.add_argument("--annotations", type=int, default=60)
    args = parser.parse_args()
    exe = ensure_potato(args.potato_venv)
    train = load("train")
    truth = {r["id"]: r["label"] for r in train}
    workdir = Path(tempfile.mkdtemp(prefix="alrank-potato-e2e-"))
    incoming = workdir / "incoming"
    incoming.mkdir()
    print(f"work dir {workdir}", flush=True)
    al = Alrank(workdir)
    checks = Checks()
    potato = None
    try:
        port = free_port()
        draft = potato_config(incoming, {}, port)
        created = al.call(
            "POST",
            "/v1/projects/potato",
            data=yaml.safe_dump(draft).encode(),
            headers={"Content-Type": "application/yaml"},
        )
        name = created["name"]
        for start in range(0, len(train), 5000):
            chunk = [{"id": r["id"], "text": r["text"]} for r in train[start : start + 5000]]
            al.call("POST", f"/v1/projects/{name}/items", json={"items": chunk})
        al.call(
            "PATCH",
            f"/v1/projects/{name}",
            json={"potato": {"data_directory": str(incoming), "head": UPDATE_FREQUENCY}},
        )
        hook = al.call("GET", f"/v1/projects/{name}")["potato"]
        endpoint = {"url": hook["webhook_url"], "secret": hook["webhook_secret"], "events": hook["events"]}
        potato = Potato(exe, workdir, potato_config(incoming, endpoint, port))

        def feed() -> dict:
            return al.call("GET", f"/v1/projects/{name}")["potato"].get("feed") or {}

        def ranking() -> dict:
            return al.call("GET", f"/v1/projects/{name}")["counts"]["label"]["ranking"] or {}

        wait_until(lambda: feed().get("written"), 300, "the first feed", every=0.5)
        potato.login("ana")
        instance = potato.current()
        if instance == "intro":
            potato.label("intro", "ham")
            time.sleep(2)  # the watcher's poll
            potato.advance("intro")
            instance = potato.current()
        freshness, matched, retrains = [], 0, 0
        annotated: list[str] = []
        for k in range(1, args.annotations + 1):
            t0 = time.monotonic()
            potato.label(instance, truth[instance])
            annotated.append(instance)
            wait_until(
                lambda item=instance: (
                    al.call("GET", f"/v1/projects/{name}/items/{item}")["labels"]["label"].get("ana")
                    == truth[item]
                ),
                30,
                f"annotation {k} in alrank",
                every=0.1,
            )
            if k % UPDATE_FREQUENCY == 0:
                retrains += 1

                def fed(done: int = k) -> bool:
                    r = ranking()
                    return bool(
                        r and r.get("labelled", 0) >= done and feed().get("ranking_id") == r["ranking_id"]
                    )

                wait_until(fed, 120, f"the feed after annotation {k}", every=0.1)
                time.sleep(1.5)  # Potato's watcher polls every second
                freshness.append(time.monotonic() - t0)
                first = feed().get("first")
                potato.advance(instance)
                instance = potato.current()
                matched += instance == first
                if instance != first:
                    print(f"  after annotation {k}: Potato served {instance}, alrank's feed begins {first}")
            else:
                potato.advance(instance)
                instance = potato.current()
        checks.check(
            matched == retrains,
            f"Potato served the head of alrank's feed after {matched} of {retrains} retrains",
        )
        labels = al.call("GET", f"/v1/projects/{name}")["counts"]["label"]["with_any_label"]
        checks.check(labels == args.annotations, f"{labels} of {args.annotations} annotations reached alrank")
        sources = fed_sources(incoming)
        served = Counter(sources.get(i, "before the feed") for i in annotated)
        evaluated = served["evaluation"]
        model = check_evaluation(al, checks, name, evaluated, args.annotations, "Potato")
        print(f"Potato served the head of alrank's feed after {matched} of {retrains} retrains")
        print(f"{labels} of {args.annotations} annotations reached alrank through Potato's signed webhooks")
        print(f"items served by source: {dict(served)}; the model measured on {model['evaluation']['size']}")
        if freshness:
            print(
                "annotation in Potato -> new order loaded by Potato: "
                f"median {statistics.median(freshness):.2f} s, max {max(freshness):.2f} s "
                "(includes a 1.5 s wait for Potato's 1 s directory poll)"
            )
    finally:
        if potato is not None:
            potato.close()
        al.close()
    print(f"checks: {checks.passed} passed, {len(checks.failed)} failed")
    for failure in checks.failed:
        print(f"  FAILED: {failure}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
