"""Kafka client configuration from settings, shared by every client of the project.

confluent-kafka clients take :func:`client_config` (and its producer/consumer variants); the
faust apps take :func:`faust_credentials`. Both carry the same security settings, so a broker
that requires TLS + SCRAM is reached by every client once the settings say so.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from oddsflow.settings import SecurityProtocol, Settings


def ca_location(settings: Settings) -> Path | None:
    """The CA bundle to verify the broker with: configured, else the local CA if there is one."""
    if settings.kafka.ca_file is not None:
        return settings.kafka.ca_file
    local = settings.state_dir / "tls" / "ca.pem"
    return local if local.exists() else None


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's security keys: TLS with hostname verification, SCRAM when SASL_SSL."""
    k = settings.kafka
    if k.security_protocol is SecurityProtocol.PLAINTEXT:
        return {}
    cfg: dict[str, Any] = {
        "security.protocol": k.security_protocol.value,
        "ssl.endpoint.identification.algorithm": "https",
    }
    ca = ca_location(settings)
    if ca is not None:
        cfg["ssl.ca.location"] = str(ca)
    if k.security_protocol is SecurityProtocol.SASL_SSL:
        cfg.update(
            {
                "sasl.mechanism": k.sasl_mechanism,
                "sasl.username": k.sasl_username,
                "sasl.password": k.password,
            }
        )
    return cfg


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate and name (for aiokafka)."""
    ca = ca_location(settings)
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for a faust app: None (PLAINTEXT), TLS, or SCRAM over TLS."""
    k = settings.kafka
    if k.security_protocol is SecurityProtocol.PLAINTEXT:
        return None
    import faust

    if k.security_protocol is SecurityProtocol.SSL:
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=k.sasl_username,
        password=k.password,
        ssl_context=ssl_context(settings),
        mechanism=k.sasl_mechanism,
    )


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Every confluent-kafka client's base: where the broker is and how to authenticate."""
    cfg: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "client.id": settings.kafka.client_id,
        **security_config(settings),
    }
    cfg.update(extra)
    return cfg


#: Room around a body: a raw record is the body plus its envelope (event id, request metadata,
#: framing); a dead letter is a raw record plus its reason and origin.
ENVELOPE_ALLOWANCE = 64 * 1024
#: librdkafka's and aiokafka's default fetch.max.bytes: a fetch response's size.
FETCH_MAX_BYTES = 50 * 1024 * 1024


def raw_record_max_bytes(settings: Settings) -> int:
    """``max.message.bytes`` of the raw topics: the largest body collectors store, enveloped."""
    return settings.collectors.max_payload_bytes + ENVELOPE_ALLOWANCE


def record_max_bytes(settings: Settings) -> int:
    """The largest record any client writes or reads: a dead letter holding a raw record (the
    dead-letter topics' ``max.message.bytes``, producers' ``message.max.bytes``, consumers'
    fetch sizes)."""
    return raw_record_max_bytes(settings) + ENVELOPE_ALLOWANCE


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent, acks=all: a record is reported delivered only when the broker has it.

    lz4 on the wire: JSON bodies shrink 5-10x, and every consumer of ours reads it (librdkafka
    natively, aiokafka through cramjam, a declared dependency). ``message.max.bytes`` (checked
    on the uncompressed record) lets a raw record of up to ``[collectors] max_payload_bytes``
    and its dead letter through.
    """
    return client_config(
        settings,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 512 * 1024,
            "compression.type": "lz4",
            "message.max.bytes": record_max_bytes(settings),
            "queue.buffering.max.messages": 500_000,
            **extra,
        },
    )


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    """A group consumer; its fetch sizes take the largest record any topic holds at once (a
    raw body of ``max_payload_bytes``), not in librdkafka's growing retries from 1 MiB."""
    return client_config(
        settings,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.min.bytes": 1,
            "max.partition.fetch.bytes": record_max_bytes(settings),
            "fetch.max.bytes": max(FETCH_MAX_BYTES, record_max_bytes(settings)),
            "partition.assignment.strategy": "cooperative-sticky",
            **extra,
        },
    )
