"""Kafka administration: create the catalog's topics (idempotent), list them, describe offsets."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from core.kafka_config import client_config, raw_record_max_bytes, record_max_bytes
from core.settings import Settings
from core.topics import CATALOG, TopicSpec, Zone


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def topic_config(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    """The broker configs a catalog topic is created (and aligned) with.

    Raw topics take a body of ``[collectors] max_payload_bytes`` enveloped, dead-letter topics
    a raw record with its reason (``max.message.bytes``: the broker checks the compressed
    batch, so an incompressible body of that size fits too). ``raw.odds.file`` and
    ``raw.odds.simulator`` are kept by size, not time (``TopicSpec.retention_ms`` says why).
    """
    cfg = {"retention.ms": str(spec.retention_ms(settings))}
    if spec.compact:
        cfg["cleanup.policy"] = "compact"
    if spec.zone is Zone.RAW:
        cfg["max.message.bytes"] = str(raw_record_max_bytes(settings))
    if spec.name.startswith("dlq."):
        cfg["max.message.bytes"] = str(record_max_bytes(settings))
    if spec.replays_history:
        cfg["retention.bytes"] = str(settings.pipeline.retention.history_retention_bytes)
    return cfg


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = CATALOG) -> list[str]:
    """Create missing topics and align the configs of existing ones; returns what was done."""
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
        _await_leaders(admin, [t.topic for t in new])
    kept = [s for s in specs if prefix + s.name in existing]
    if kept:
        _align(admin, {prefix + s.name: topic_config(s, settings) for s in kept})
        done.append(f"{len(kept)} topics already existed")
    return done


def _await_leaders(admin: AdminClient, names: list[str], wait_s: float = 30.0) -> None:
    """Return once every partition of these new topics has a leader in the broker's metadata.

    CreateTopics returns when the controller has committed the topics; the broker that answers
    the next request may not know them yet (UNKNOWN_TOPIC_OR_PART on a describe, a consumer
    that finds no partitions). A fresh broker in CI showed both.
    """
    deadline = time.monotonic() + wait_s
    pending = set(names)
    while pending:
        topics = admin.list_topics(timeout=10).topics
        for name in list(pending):
            meta = topics.get(name)
            if (
                meta is not None
                and meta.error is None
                and meta.partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            late = sorted(pending)
            raise TimeoutError(f"new topics without a leader after {wait_s:.0f} s: {late}")
        if pending:
            time.sleep(0.05)


def _align(admin: AdminClient, configs: dict[str, dict[str, str]]) -> None:
    """Set each key on the existing topic (incremental: nothing else changes), so a topic made
    before a limit existed, or by the broker's auto-creation, gets the catalog's configs."""
    set_topic_configs(admin, configs)


def set_topic_configs(
    admin: AdminClient, configs: dict[str, dict[str, str]], wait_s: float = 15.0
) -> None:
    """Set these keys on existing topics and return once the broker reports them.

    With KRaft the controller commits the change before a broker has applied it, so a
    ``describe_configs`` right after the alter can still show the old value (CI saw that once);
    waiting here means whoever reads the config next sees what was set.
    """
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in cfg.items()
            ],
        )
        for name, cfg in configs.items()
    ]
    for fut in admin.incremental_alter_configs(resources).values():
        fut.result()
    deadline = time.monotonic() + wait_s
    pending = dict(configs)
    while pending:
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in pending])
        for res, fut in described.items():
            entries = fut.result(timeout=wait_s)
            if all(entries[k].value == v for k, v in pending[res.name].items()):
                del pending[res.name]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"topic configs not applied after {wait_s:.0f} s: {sorted(pending)}")
        if pending:
            time.sleep(0.1)
