"""docker-compose.yml cannot run here (no Docker engine); check what it declares instead: the
start order, the data that survives `down`, the health of every long-running service, and one
non-root image built once."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import load_settings
from oddsflow.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ("kafka", "postgres")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def oddsflow_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if name not in INFRA}


def argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_runs_kafka_postgres_and_every_worker(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")
    for role in ("staging", "features", "sink"):
        w = services[f"worker-{role}"]
        assert argv(w)[:3] == ["oddsflow", "worker", role]
        assert w["environment"]["ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert w["environment"]["DATABASE_URL"].endswith("@postgres:5432/oddsflow")
        assert "./config.toml:/app/config.toml:ro" in w["volumes"]


def test_every_command_is_one_the_command_line_takes(services: dict[str, Any]) -> None:
    parser = build_parser()
    for name, s in oddsflow_services(services).items():
        words = argv(s)
        commands = (
            [shlex.split(c) for c in words[2].split("&&")] if words[:2] == ["sh", "-c"] else [words]
        )
        for command in commands:
            assert command[0] == "oddsflow", name
            parser.parse_args(command[1:])  # a usage error exits: the test fails


def test_services_start_after_setup_completed(services: dict[str, Any]) -> None:
    setup = services["setup"]
    assert argv(setup)[:2] == ["sh", "-c"]
    assert "oddsflow topics create" in argv(setup)[2] and "oddsflow db migrate" in argv(setup)[2]
    assert setup["restart"] == "no"
    for infra in INFRA:
        assert setup["depends_on"][infra]["condition"] == "service_healthy"
    others = {n: s for n, s in oddsflow_services(services).items() if n != "setup"}
    assert {"worker-staging", "worker-features", "worker-sink", "web"} <= set(others)
    assert any(argv(s)[1] == "collect" for s in others.values())  # a collector
    for name, s in others.items():
        deps = s["depends_on"]
        assert deps["setup"]["condition"] == "service_completed_successfully", name
        for infra in INFRA:
            assert deps[infra]["condition"] == "service_healthy", name


def test_kafka_and_postgres_data_are_named_volumes(services: dict[str, Any]) -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    named = set(doc["volumes"])
    kafka_dir = services["kafka"]["environment"]["KAFKA_LOG_DIRS"]
    mounts = {
        infra: dict(v.split(":")[::-1][:2] for v in services[infra]["volumes"]) for infra in INFRA
    }  # path in the container -> volume
    assert mounts["kafka"][kafka_dir] in named
    assert mounts["postgres"]["/var/lib/postgresql/data"] in named
    assert services["kafka"]["environment"]["CLUSTER_ID"]  # a restart reuses the storage


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    """Every oddsflow service but the one-off setup: the workers and collectors ask their own
    `--health-port`'s /ready (each its own port), the web view its /healthz."""
    long_running = {n: s for n, s in oddsflow_services(services).items() if n != "setup"}
    assert {"collector-sbd", "collector-odds-api"} <= set(long_running)
    ports = {}
    for name, s in long_running.items():
        assert "healthcheck" in s, f"{name} has no healthcheck"
        test = " ".join(s["healthcheck"]["test"])
        words = argv(s)
        if name == "web":
            assert "/healthz" in test
            continue
        assert words[1] in ("worker", "collect"), name
        ports[name] = port = words[words.index("--health-port") + 1]
        assert f"http://127.0.0.1:{port}/ready" in test, (name, test)
    assert len(set(ports.values())) == len(ports) == 5, ports


def test_one_image_built_once_and_run_by_every_service(services: dict[str, Any]) -> None:
    ours = oddsflow_services(services)
    built = [name for name, s in ours.items() if "build" in s]
    assert built == ["setup"]
    image = services["setup"]["image"]
    assert image and all(s["image"] == image for s in ours.values())


def test_the_image_runs_as_a_user_without_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), users
    assert "useradd --system" in dockerfile
    assert "ODDSFLOW_STATE_DIR" in dockerfile  # state goes where that user may write


def test_the_web_view_is_published_on_loopback_only(services: dict[str, Any]) -> None:
    assert all(p.startswith("127.0.0.1:") for p in services["web"]["ports"])


def test_compose_ports_match_the_local_defaults(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, Any]
) -> None:
    for var in ("ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS", "ODDSFLOW_POSTGRES__PORT", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert f"{s.kafka.port}:{s.kafka.port}" in services["kafka"]["ports"]
    assert f"{s.postgres.port}:5432" in services["postgres"]["ports"]
    listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"localhost:{s.kafka.port}" in listeners
