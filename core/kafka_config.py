"""Kafka client configuration from settings, shared by every client of the project.

confluent-kafka clients take :func:`client_config` (and its producer/consumer variants); the
faust apps take :func:`faust_credentials`. Both carry the same security settings, so a broker
that requires TLS + SCRAM is reached by every client once the settings say so.

A broker that does not answer: librdkafka retries by itself and logs every failed connection
(~19 lines a second). Its log lines go to the Python logger ``oddsflow.librdkafka`` at DEBUG,
and its errors to :class:`BrokerErrors`, which says once per outage, on the ``oddsflow.kafka``
logger at INFO, "waiting for Kafka at …". Long-running commands (workers, subscribe, web,
metrics, pollers) show that logger's INFO lines; short commands fail within their timeout with
one line of their own (:mod:`oddsflow.errors`).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from core.settings import SecurityProtocol, Settings

KAFKA_LOG = logging.getLogger("oddsflow.kafka")
LIBRDKAFKA_LOG = logging.getLogger("oddsflow.librdkafka")
#: A quiet spell this long between two "unreachable" errors means the broker answered between
#: them: the next outage is announced again.
OUTAGE_GAP_SECONDS = 60.0
_UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
_outage_lock = threading.Lock()
_outage: dict[str, float | str] = {}  # last_at, reason: shared by every client of the process


class LibrdkafkaLog:
    """librdkafka's log lines at DEBUG (``oddsflow -vv``): its errors reach :class:`BrokerErrors`
    too, so nothing is lost by keeping the connection chatter off stderr."""

    def log(self, _level: int, msg: str, *args: Any, **_kw: Any) -> None:
        LIBRDKAFKA_LOG.debug(msg, *args)


class BrokerErrors:
    """A client's ``error_cb``: one "waiting for Kafka" line per outage (process-wide), any other
    error once per client and error code."""

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self._seen: set[int] = set()

    def __call__(self, err: KafkaError) -> None:
        code = err.code()
        if code == KafkaError._AUTHENTICATION:  # the broker answers and refuses the login
            with _outage_lock:
                _outage["refused_login"] = err.str()
        if code in _UNREACHABLE:
            # "1/1 brokers are down" says less than the connection error before it
            note_unreachable(
                self.servers, None if code == KafkaError._ALL_BROKERS_DOWN else err.str()
            )
            return
        if code not in self._seen:
            self._seen.add(code)
            (KAFKA_LOG.warning if err.fatal() else KAFKA_LOG.info)(
                "Kafka at %s: %s", self.servers, err.str()
            )


def note_unreachable(servers: str, reason: str | None) -> None:
    """Record that the broker did not answer; the first time in an outage, say so (INFO)."""
    now = time.monotonic()
    with _outage_lock:
        last = _outage.get("last_at")
        new = not isinstance(last, float) or now - last > OUTAGE_GAP_SECONDS
        _outage["last_at"] = now
        if reason:
            _outage["reason"] = reason
        said = str(_outage.get("reason", "no answer"))
    if new:
        KAFKA_LOG.info("waiting for Kafka at %s (%s); retrying quietly", servers, _tail(said))


def _tail(reason: str) -> str:
    """librdkafka prefixes the broker's name: "127.0.0.1:1/bootstrap: Connect to … failed: …"."""
    return reason.split(": ", 1)[1] if "/bootstrap: " in reason else reason


def refused_login() -> str | None:
    """The broker's refusal of this process's credentials, as librdkafka said it (or None)."""
    with _outage_lock:
        reason = _outage.get("refused_login")
    return str(reason) if reason else None


def last_unreachable() -> str | None:
    """Why the broker did not answer, as librdkafka said last in this process (or None)."""
    with _outage_lock:
        reason = _outage.get("reason")
    return _tail(str(reason)) if reason else None


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
    """Every confluent-kafka client's base: where the broker is, how to authenticate, and where
    librdkafka's logs and errors go (see the module docstring; ``extra`` may replace them)."""
    cfg: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "client.id": settings.kafka.client_id,
        "logger": LibrdkafkaLog(),
        "error_cb": BrokerErrors(settings.kafka.bootstrap_servers),
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
