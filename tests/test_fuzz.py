"""Schemathesis fuzzes the running service from ``openapi.yaml``, with a fixed seed and the
admin key.

Every answer must be a documented status with the documented body and content type, none a
5xx, a 405 must carry ``Allow``, and a request with no key or a wrong one must be refused
(``ignored_auth``). Path parameters point at a project that exists (with
items, labels, a model and a job), so the fuzzing reaches the service's logic instead of
stopping at 404s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from procs import Annotator, Serve

SEED = 20
EXAMPLES = 25
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "ignored_auth",
)


def schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return [str(exe)]


def test_fuzzing_the_running_service_finds_no_error(tmp_path):
    command = schemathesis()
    s = Serve(tmp_path / "data")
    try:
        ann = Annotator(s.base, s.admin_key, project="fuzz")
        ann.create(n=300)
        for _ in range(2):
            ann.label_round(10)
        ann.wait_for_version_above(None, 60)
        job = ann.call("POST", "/v1/projects/fuzz/train?schema=topic").json()["job"]
        for doomed in ("doomed", "doomed2"):
            Annotator(s.base, s.admin_key, project=doomed).create(n=20)
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            f"""
[parameters]
"path.project" = "fuzz"
"path.schema" = "topic"
"query.schema" = "topic"
"path.item" = "i0"
"path.job" = "{job}"

[[operations]]
include-path = "/v1/projects/{{project}}"
include-method = "DELETE"
parameters = {{ "path.project" = "doomed" }}
""",
            encoding="utf-8",
        )
        result = subprocess.run(
            [
                *command,
                f"--config-file={config}",
                "run",
                s.base + "/openapi.json",
                f"--checks={','.join(CHECKS)}",
                f"--max-examples={EXAMPLES}",
                f"--seed={SEED}",
                f"--header=Authorization: Bearer {s.admin_key}",
                "--workers=1",
                "--request-timeout=20",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
            check=False,
        )
        summary = result.stdout[-3000:]
        print(summary)
        assert result.returncode == 0, summary + result.stderr[-2000:]
        assert " passed" in summary or "No issues found" in summary, summary
    finally:
        s.close()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_every_operation_without_a_key_is_a_401(tmp_path):
    """Each operation of the document, called with no key and with a wrong one: 401 with
    WWW-Authenticate (never a 5xx, never an answer), but for the probes."""
    import requests
    import yaml
    from procs import ROOT

    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    s = Serve(tmp_path / "data")
    try:
        checked = 0
        for path, item in spec["paths"].items():
            url = s.base + path.replace("{", "").replace("}", "")
            for method, operation in item.items():
                if method == "parameters":
                    continue
                for headers in ({}, {"Authorization": "Bearer alr_000000000000_" + "x" * 43}):
                    r = requests.request(method, url, headers=headers, timeout=10)
                    if operation.get("security") == []:
                        assert r.status_code < 500 and r.status_code != 401, (method, path, r.status_code)
                        continue
                    assert r.status_code == 401, (method, path, r.status_code, r.text)
                    assert "Bearer" in r.headers["WWW-Authenticate"]
                    assert r.headers["Content-Type"] == "application/problem+json"
                    checked += 1
        assert checked >= 40
    finally:
        s.close()
