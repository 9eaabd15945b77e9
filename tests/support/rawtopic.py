"""Read a raw topic back, completely: for tests and audits of what was acked.

Reads every partition from the beginning to its end at the time of the call
(:func:`core.reader.read_topic`), so "what the broker holds" is exact without waiting for an idle
timeout (the raw producers are idempotent and not transactional: the high watermark is the
record count). The watermarks come from :func:`core.offsets.topic_watermarks`, which waits out
a topic its collector has just created (CI once failed here on ``NOT_LEADER_FOR_PARTITION``).
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer

from core.kafka_config import consumer_config
from core.offsets import topic_watermarks
from core.reader import read_topic
from core.settings import Settings
from core.topics import raw_topic, topic_name
from schemas.codec import default_codec


def high_watermarks(settings: Settings, source: str) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} of ``raw.odds.<source>``; empty if the topic does not exist."""
    topic = topic_name(settings, raw_topic(source))
    c = Consumer(consumer_config(settings, f"rawtopic-{uuid.uuid4().hex[:8]}"))
    try:
        return topic_watermarks(c, topic)
    finally:
        c.close()


def count_raw(settings: Settings, source: str) -> int:
    return sum(hi - lo for lo, hi in high_watermarks(settings, source).values())


def read_raw(settings: Settings, source: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every record of ``raw.odds.<source>``, decoded, with ``_partition``, ``_offset``,
    ``_key`` and ``_timestamp`` (the Kafka timestamp, ms) added; per partition in offset order."""
    codec = default_codec()
    out: list[dict[str, Any]] = []
    for msg in read_topic(settings, topic_name(settings, raw_topic(source)), timeout=timeout):
        rec = codec.decode(msg.value())
        rec["_partition"], rec["_offset"], rec["_key"] = msg.partition(), msg.offset(), msg.key()
        rec["_timestamp"] = msg.timestamp()[1]
        out.append(rec)
    return out
