"""docker-compose.yml follows the Compose specification and runs what the README says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
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


PROMETHEUS_DIR = os.path.join(ROOT, "deploy", "prometheus")


def test_compose_has_an_optional_prometheus_with_the_admin_key_as_a_secret():
    with open(COMPOSE, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]  # only with --profile monitoring
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    for volume in prometheus["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert os.path.exists(os.path.join(ROOT, source)), source
    assert prometheus["secrets"] == ["admin_key"]
    assert compose["secrets"]["admin_key"] == {"environment": "ALRANK_ADMIN_KEY"}
    with open(os.path.join(PROMETHEUS_DIR, "prometheus.yml"), encoding="utf-8") as f:
        scrape = yaml.safe_load(f)["scrape_configs"][0]
    assert scrape["authorization"]["credentials_file"] == "/run/secrets/admin_key"
    assert scrape["static_configs"][0]["targets"] == ["api:8000"]


def local_prometheus_config(tmp_path, target: str, key: str) -> str:
    """deploy/prometheus/prometheus.yml with this machine's paths and target."""
    secret = tmp_path / "admin_key"
    secret.write_text(key)
    with open(os.path.join(PROMETHEUS_DIR, "prometheus.yml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [os.path.join(PROMETHEUS_DIR, "alerts.yml")]
    scrape = config["scrape_configs"][0]
    scrape["authorization"]["credentials_file"] = str(secret)
    scrape["static_configs"][0]["targets"] = [target]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")


@needs_promtool
def test_prometheus_config_and_alert_rules_pass_promtool(tmp_path):
    config = local_prometheus_config(tmp_path, "127.0.0.1:8000", "key")
    for command in (
        ["promtool", "check", "config", config],
        ["promtool", "check", "rules", "alerts.yml"],
        ["promtool", "test", "rules", "alerts.test.yml"],  # each alert fires when it should
    ):
        done = subprocess.run(command, capture_output=True, text=True, cwd=PROMETHEUS_DIR, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Prometheus is not installed")
def test_a_real_prometheus_scrapes_alrank_with_the_admin_key(redis_conn, redis_url, tmp_path):
    import requests
    from procs import ADMIN_KEY, answers, free_port, gunicorn, terminate, wait_until

    port, prom_port = free_port(), free_port()
    api = gunicorn(redis_url, port)
    config = local_prometheus_config(tmp_path, f"127.0.0.1:{port}", ADMIN_KEY)
    prom = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 30, "gunicorn to answer")

        def query(expr: str) -> list:
            try:
                r = requests.get(f"{base}/query", params={"query": expr}, timeout=5)
            except requests.RequestException:
                return []
            return r.json()["data"]["result"] if r.status_code == 200 else []

        up = wait_until(lambda: query('up{job="alrank"} == 1'), 60, "Prometheus to scrape alrank")
        assert up[0]["metric"]["job"] == "alrank"
        assert wait_until(lambda: query("alrank_workers"), 30, "alrank's metrics in Prometheus")
        rules = requests.get(f"{base}/rules", timeout=5).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"AlrankNoWorkers", "AlrankRankingStale"}
        # no worker runs here: the alert on it is pending, on its way to firing
        pending = wait_until(lambda: query('ALERTS{alertname="AlrankNoWorkers"}'), 60, "the no-worker alert")
        assert pending[0]["metric"]["alertstate"] in ("pending", "firing")
    finally:
        terminate([prom, api])


def test_compose_gives_the_api_and_every_worker_one_feature_directory():
    with open(COMPOSE, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    for name in ("api", "worker"):
        service = compose["services"][name]
        where = service["environment"]["ALRANK_FEATURE_DIR"]
        assert f"features:{where}" in service["volumes"], name
    assert "features" in compose["volumes"]
    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
        assert "chown alrank /var/lib/alrank/features" in f.read()  # a new volume takes its owner
