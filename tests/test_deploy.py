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


def test_compose_keeps_redis_private_and_the_api_keyed():
    with open(COMPOSE, encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    redis = services["redis"]
    assert "ports" not in redis  # reachable by the other services only
    assert "--requirepass" in redis["command"]
    assert redis["command"][redis["command"].index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    for name in ("api", "worker"):
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD}@")
    assert services["api"]["environment"]["ALRANK_ADMIN_KEY"].startswith("${ALRANK_ADMIN_KEY:?")
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]
    example = os.path.join(ROOT, ".env.example")
    with open(example, encoding="utf-8") as f:
        names = {line.split("=")[0] for line in f if "=" in line and not line.startswith("#")}
    assert names == {"REDIS_PASSWORD", "ALRANK_ADMIN_KEY"}
