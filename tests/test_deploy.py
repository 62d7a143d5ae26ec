"""docker-compose.yml follows the Compose specification and runs what the README says."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPOSE = os.path.join(ROOT, "docker-compose.yml")


def test_compose_file_is_valid_against_the_spec():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_redis_is_persistent_and_checked():
    with open(COMPOSE, encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "healthcheck" in redis
    assert "deploy" not in services["worker"] or "replicas" not in services["worker"]["deploy"]
    assert "container_name" not in services["worker"]  # or --scale worker=N would clash
    assert "ports" not in services["worker"]
