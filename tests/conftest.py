"""Test services: one real Kafka broker and one real Postgres per test session.

Which ones, in order: those the environment names (ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS and
DATABASE_URL, both already running); testcontainers when a Docker engine answers; otherwise the
local services of ``oddsflow services up`` (started here if they are not running). Every test
that touches them gets its own topic prefix and its own Postgres schemas, so tests never see each
other's records.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oddsflow.settings import Settings, load_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def service_settings() -> Iterator[Settings]:
    """Settings pointing at a running broker and database for the whole session."""
    base = load_settings()
    if os.environ.get("ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS") and base.postgres.url:
        yield base
        return
    if os.environ.get("ODDSFLOW_TESTCONTAINERS", "1") == "1" and _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
            PostgresContainer("postgres:15") as pg,
        ):
            url = pg.get_connection_url().replace("postgresql+psycopg2", "postgresql")
            yield load_settings(
                kafka={"bootstrap_servers": kafka.get_bootstrap_server()},
                postgres={"url": url},
            )
        return
    from oddsflow import services

    services.up(base)
    yield base


@pytest.fixture
def settings(service_settings: Settings) -> Settings:
    """Per-test settings: unique topic prefix and unique Postgres schemas."""
    tag = "t" + uuid.uuid4().hex[:8]
    data = service_settings.model_dump()
    data["kafka"]["topic_prefix"] = f"{tag}."
    data["pipeline"]["zones"] = {
        "raw": f"{tag}_raw",
        "staging": f"{tag}_staging",
        "curated": f"{tag}_curated",
        "operational": f"{tag}_ops",
    }
    return Settings(**data)


def settings_env(s: Settings) -> dict[str, str]:
    """Environment that makes a child `oddsflow` process use exactly these settings."""
    z = s.pipeline.zones
    env = dict(os.environ)
    env.update(
        {
            "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "ODDSFLOW_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
            "ODDSFLOW_PIPELINE__ZONES__RAW": z.raw,
            "ODDSFLOW_PIPELINE__ZONES__STAGING": z.staging,
            "ODDSFLOW_PIPELINE__ZONES__CURATED": z.curated,
            "ODDSFLOW_PIPELINE__ZONES__OPERATIONAL": z.operational,
        }
    )
    if s.postgres.url:
        env["DATABASE_URL"] = s.postgres.url
    else:
        env["ODDSFLOW_POSTGRES__PORT"] = str(s.postgres.port)
        env["ODDSFLOW_POSTGRES__HOST"] = s.postgres.host
    return env


@pytest.fixture
def pipeline_settings(settings: Settings) -> Settings:
    """Per-test settings with the catalog's topics created and the tables migrated."""
    from oddsflow.admin import create_topics
    from sinks.migrate import migrate

    create_topics(settings)
    asyncio.run(migrate(settings))
    return settings
