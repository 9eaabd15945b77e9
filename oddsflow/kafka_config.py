"""librdkafka client configuration from settings, shared by every confluent-kafka client."""

from __future__ import annotations

from typing import Any

from oddsflow.settings import Settings


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "client.id": settings.kafka.client_id,
    }
    cfg.update(extra)
    return cfg


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent, acks=all: a record is reported delivered only when the broker has it."""
    return client_config(
        settings,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 512 * 1024,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            **extra,
        },
    )


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    return client_config(
        settings,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.min.bytes": 1,
            "partition.assignment.strategy": "cooperative-sticky",
            **extra,
        },
    )
