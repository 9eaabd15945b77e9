"""Kafka administration: create the catalog's topics (idempotent), list them, describe offsets."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from oddsflow.kafka_config import client_config
from oddsflow.settings import Settings
from oddsflow.topics import CATALOG, TopicSpec


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def topic_config(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    cfg = {"retention.ms": str(spec.retention_ms(settings))}
    if spec.compact:
        cfg["cleanup.policy"] = "compact"
    return cfg


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = CATALOG) -> list[str]:
    """Create missing topics and align retention of existing ones; returns what was done."""
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=10).topics)
    prefix = settings.kafka.topic_prefix
    new = [
        NewTopic(
            prefix + s.name,
            num_partitions=settings.kafka.partitions,
            replication_factor=settings.kafka.replication_factor,
            config=topic_config(s, settings),
        )
        for s in specs
        if prefix + s.name not in existing
    ]
    done: list[str] = []
    if new:
        for name, fut in admin.create_topics(new, operation_timeout=30).items():
            try:
                fut.result()
                done.append(f"created {name}")
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    kept = len(specs) - len(new)
    if kept:
        done.append(f"{kept} topics already existed")
    return done
