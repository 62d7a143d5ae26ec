"""The project page's screenshots in ``docs/img/``, from a real run.

Starts ``alrank serve`` on a fresh data dir, creates a project with the default settings,
uploads AG News's training split (``../shared/datasets/ag_news``: 10,001 news texts, four
topics), and has three annotators label it through ``GET /next`` with the set's own labels
until ``--labels`` labels, at a pace that lets the workers retrain as they go. Then it opens
the project page as the project's manager in headless Chromium (Debian's ``chromium``,
driven by Playwright) and saves it at desktop and phone widths.

Usage: ``python docs/screenshots.py [--labels 300] [--out docs/img]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alrank.client import Client  # noqa: E402
from tests.procs import CHROMIUM_ARGS, free_port  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "ag_news" / "train.jsonl.gz"


def serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("alrank")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    log = open(data_dir.parent / "serve.log", "wb")
    proc = subprocess.Popen(
        [str(exe), "serve", f"--data-dir={data_dir}", f"--port={port}"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if (data_dir / "admin-key").exists():
            try:
                if Client(base, "x").health():
                    return proc, base
            except Exception:
                pass
        time.sleep(0.1)
    raise SystemExit("alrank serve did not come up; see serve.log")


def label(admin: Client, truth: dict[str, str], target: int) -> None:
    done = 0
    annotators = ["ana", "ben", "chen"]
    while done < target:
        for who in annotators:
            batch = admin.next("news", schema="topic", annotator=who, size=min(10, target - done))
            items = batch["items"]
            if not items:
                continue
            labels = [{"item": i["id"], "schema": "topic", "value": truth[i["id"]]} for i in items]
            admin.push_labels("news", [{**one, "annotator": who} for one in labels])
            done += len(items)
            print(f"\r{done} labels", end="", flush=True)
            time.sleep(1.0)  # a person's pace, compressed: the workers retrain as labels come
            if done >= target:
                break
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = [json.loads(line) for line in gzip.open(DATA, "rt", encoding="utf-8")]
    truth = {r["id"]: r["label"] for r in rows}
    work = Path(tempfile.mkdtemp(prefix="alrank-shots-"))
    proc, base = serve(work / "data")
    try:
        admin = Client(base, (work / "data" / "admin-key").read_text().strip())
        created = admin.create_project(
            {"name": "news", "schemas": [{"name": "topic", "labels": sorted(set(truth.values()))}]}
        )
        manager = created["api_key"]["key"]
        admin.upload_items("news", [{"id": r["id"], "text": r["text"]} for r in rows])
        while admin.project("news")["counts"]["topic"]["ranking"] is None:
            time.sleep(1)
        label(admin, truth, args.labels)
        # a retrain asked for now follows any still running, gain estimate included
        admin.wait(admin.train("news", "topic")["job"])
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            for name, options in (
                ("project-page.png", {"viewport": {"width": 1200, "height": 900}}),
                (
                    "project-page-phone.png",
                    {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
                ),
            ):
                context = browser.new_context(
                    http_credentials={"username": "lead", "password": manager}, **options
                )
                page = context.new_page()
                page.goto(f"{base}/v1/projects/news/page")
                page.wait_for_function("document.querySelector('#curve').complete")
                page.screenshot(path=str(args.out / name), full_page=name == "project-page.png")
                context.close()
                print(f"wrote {args.out / name}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
