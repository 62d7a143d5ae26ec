"""Schemathesis fuzzes the running service from ``openapi.yaml``, with a fixed seed.

Every answer must be a documented status with the documented body and content type, none a
5xx, and a 405 must carry ``Allow``. Path parameters point at a project that exists (with
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
        ann = Annotator(s.base, project="fuzz")
        ann.create(n=300)
        for _ in range(2):
            ann.label_round(10)
        ann.wait_for_version_above(None, 60)
        job = ann.call("POST", "/v1/projects/fuzz/train?schema=topic").json()["job"]
        for doomed in ("doomed", "doomed2"):
            Annotator(s.base, project=doomed).create(n=20)
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
