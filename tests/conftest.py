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
from collections.abc import Iterator

import pytest

from core.isolation import child_env, isolated_settings
from core.settings import Settings, load_settings


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
def settings(service_settings: Settings) -> Iterator[Settings]:
    """Per-test settings: unique topic prefix and unique Postgres schemas.

    The test's topics are deleted afterwards, so a developer's long-lived local broker does not
    pile up thousands of partitions (which slows its start-up to minutes).
    """
    s = isolated_settings(service_settings)
    yield s
    _delete_topics(s)


def _delete_topics(s: Settings) -> None:
    """Best effort: delete every topic under the test's prefix (a failure only leaves garbage)."""
    from core.admin import admin_client

    prefix = s.kafka.topic_prefix
    if not prefix:
        return
    try:
        admin = admin_client(s)
        names = [t for t in admin.list_topics(timeout=5).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=10).values():
                future.result(timeout=15)
    except Exception:  # cleanup must never fail a test
        pass


def settings_env(s: Settings) -> dict[str, str]:
    """Environment that makes a child `oddsflow` process use exactly these settings."""
    return child_env(s)


@pytest.fixture
def pipeline_settings(settings: Settings) -> Settings:
    """Per-test settings with the catalog's topics created and the tables migrated."""
    from core.admin import create_topics
    from sinks.migrate import migrate

    create_topics(settings)
    asyncio.run(migrate(settings))
    return settings
