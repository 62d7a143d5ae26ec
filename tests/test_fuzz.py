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


HOOKS_ENV = {
    **os.environ,
    "NO_COLOR": "1",
    "SCHEMATHESIS_HOOKS": "schemathesis_hooks",  # tests/schemathesis_hooks.py: JSON Lines bodies
    "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
}


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
            env=HOOKS_ENV,
            check=False,
        )
        summary = result.stdout[-3000:]
        print(summary)
        assert result.returncode == 0, summary + result.stderr[-2000:]
        assert " passed" in summary or "No issues found" in summary, summary
    finally:
        s.close()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def documented_methods(path: str) -> set[str]:
    """The methods openapi.yaml documents for a concrete path."""
    import re

    import yaml

    spec = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "openapi.yaml").read_text(encoding="utf-8")
    )
    for template, item in spec["paths"].items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            return set(item) - {"parameters"}
    return set()


def test_fuzzing_without_a_key_gets_only_401s(tmp_path):
    """The same fuzzing with no key: every answer but the probes' is a 401 with
    WWW-Authenticate (or a 405 for a method the path does not have), never a 5xx, read from
    the run's HAR record of every exchange."""
    import json
    from urllib.parse import urlparse

    command = schemathesis()
    s = Serve(tmp_path / "data")
    try:
        Annotator(s.base, s.admin_key, project="fuzz").create(n=50)
        har = tmp_path / "exchanges.har"
        result = subprocess.run(
            [
                *command,
                "run",
                s.base + "/openapi.json",
                "--checks=not_a_server_error,status_code_conformance,content_type_conformance",
                "--max-examples=10",
                f"--seed={SEED}",
                "--workers=1",
                "--request-timeout=20",
                "--report=har",
                f"--report-har-path={har}",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=HOOKS_ENV,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
        assert len(entries) > 100
        public = {"/healthz", "/readyz", "/openapi.json"}
        for entry in entries:
            path, status = urlparse(entry["request"]["url"]).path, entry["response"]["status"]
            if path in public:
                assert status < 500, (path, status)
                continue
            method = entry["request"]["method"].lower()
            if method == "options":  # the allowed methods, which the API document states anyway
                assert status < 500, (method, path, status)
                continue
            if status == 405:  # a method the path does not have: refused before any key is asked
                assert method not in documented_methods(path), (method, path)
                continue
            if path.startswith("/ls/"):  # Label Studio's calls: the URL's secret is the credential
                assert status == 404, (method, path, status)
                continue
            assert status == 401, (method, path, status)
            names = {h["name"].lower() for h in entry["response"]["headers"]}
            assert "www-authenticate" in names
    finally:
        s.close()
