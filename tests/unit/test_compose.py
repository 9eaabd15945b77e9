"""docker-compose.yml cannot run here (no Docker engine); check what it declares instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oddsflow.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_kafka_postgres_and_every_worker() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")
    for role in ("staging", "features", "sink"):
        w = services[f"worker-{role}"]
        assert w["command"] == ["oddsflow", "worker", role]
        assert w["environment"]["ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert w["environment"]["DATABASE_URL"].endswith("@postgres:5432/oddsflow")
        assert "./config.toml:/app/config.toml:ro" in w["volumes"]


def test_compose_ports_match_the_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS", "ODDSFLOW_POSTGRES__PORT", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    s = load_settings()
    assert f"{s.kafka.port}:{s.kafka.port}" in doc["services"]["kafka"]["ports"]
    assert f"{s.postgres.port}:5432" in doc["services"]["postgres"]["ports"]
    listeners = doc["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"localhost:{s.kafka.port}" in listeners
