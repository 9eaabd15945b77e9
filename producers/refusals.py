"""What a collector received and did not store, on ``dlq.collect``, where ``oddsflow dlq list``
shows it beside the other stages' dead letters (it reads every ``dlq.<stage>`` topic, and the
sink copies them into ``operational.dead_letters``).

Each refusal is a DeadLetter (schemas/avro/operational/dead_letter.avsc): stage ``collect``;
``origin_topic`` the raw topic the body was for (so the source reads as in staging's letters);
partition and offset -1, since it never was on a topic; ``key`` the body's event id; ``original``
the body when it is within ``[collectors] max_payload_bytes``, empty when it is over it (a
refusal for size must not need the size it refuses); ``error_class``; ``reason`` saying what,
how large, what the server said and when; ``failed_at`` the time of the fetch.

Writing a refusal never stops a collector: a failed write is logged and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import dlq_topic, raw_topic, topic_name
from schemas.codec import default_codec

log = logging.getLogger("oddsflow.collect")
STAGE = "collect"
DEAD_LETTER = "oddsflow.operational.DeadLetter"
#: Reasons quote what the server sent; they are cut so a dead letter stays the body's size.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Refusal:
    """One thing a collector did not store, and why."""

    error_class: str
    reason: str  # what was wrong, the size, what the server said, when
    at: datetime  # when it was fetched (or when the poll gave up)
    body: bytes = b""  # the body, when it is within the size limit
    event_id: str | None = None  # the body's event id, when there was a body


class RefusalSink(Protocol):
    """Where a collector records its refusals (:class:`DeadLetters`, or a list in tests)."""

    def refuse(self, refusal: Refusal) -> None: ...


def cut(reason: str) -> str:
    """``reason`` within MAX_REASON_CHARS, saying how much was left out."""
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return f"{reason[:MAX_REASON_CHARS]}… ({len(reason) - MAX_REASON_CHARS:,} more characters)"


class DeadLetters:
    """Refusals of one source's collector, produced to ``dlq.collect``."""

    def __init__(self, settings: Settings, source: str) -> None:
        self.settings = settings
        self.source = source
        self.topic = topic_name(settings, dlq_topic(STAGE))
        self.origin_topic = topic_name(settings, raw_topic(source))
        self._producer = Producer(producer_config(settings, on_delivery=self._delivered))
        self._encode = default_codec().encoder(DEAD_LETTER)
        self.written = 0
        self.failed = 0

    def connect(self) -> None:
        """Make ``dlq.collect`` with the catalog's configs (its records hold bodies up to the
        size limit), never leave it to the broker's auto-creation; best effort."""
        from core.admin import create_topics
        from core.topics import spec

        try:
            create_topics(self.settings, (spec(dlq_topic(STAGE)),))
        except KafkaException as exc:
            log.warning("%s: topic configs not checked (%s)", self.topic, exc)

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.written += 1
        else:
            self.failed += 1
            log.error("%s: a refusal was not recorded: %s", self.topic, err)

    def refuse(self, refusal: Refusal) -> None:
        value = self._encode(
            {
                "stage": STAGE,
                "origin_topic": self.origin_topic,
                "origin_partition": -1,
                "origin_offset": -1,
                "key": refusal.event_id.encode() if refusal.event_id else None,
                "original": refusal.body,
                "error_class": refusal.error_class,
                "reason": cut(refusal.reason),
                "failed_at": refusal.at,
            }
        )
        try:
            self._producer.produce(self.topic, value=value, key=self.source.encode())
        except (KafkaException, BufferError) as exc:
            self.failed += 1
            log.error("%s: a refusal was not recorded: %s", self.topic, exc)
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for the refusals' delivery reports; returns how many are still outstanding."""
        return self._producer.flush(timeout)
