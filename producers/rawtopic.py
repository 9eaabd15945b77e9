"""Read a raw topic back, completely: for tests, the benchmark and audits of what was acked.

Reads every partition from the beginning up to its high watermark at the time of the call, so
"what the broker holds" is exact without waiting for an idle timeout (the raw producers are
idempotent and not transactional: the high watermark is the record count).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from oddsflow.kafka_config import consumer_config
from oddsflow.settings import Settings
from oddsflow.topics import raw_topic, topic_name
from schemas.codec import default_codec


def high_watermarks(settings: Settings, source: str) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} of ``raw.odds.<source>``; empty if the topic does not exist."""
    topic = topic_name(settings, raw_topic(source))
    c = Consumer(consumer_config(settings, f"rawtopic-{uuid.uuid4().hex[:8]}"))
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        return {p: _watermarks(c, TopicPartition(topic, p)) for p in meta.partitions}
    finally:
        c.close()


# a topic a collector has just created has no leader for a moment: the broker answers these
TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def _watermarks(consumer: Consumer, tp: TopicPartition, patience: float = 10.0) -> tuple[int, int]:
    """(low, high) of one partition, asking again while the broker is electing its leader."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            if e.args[0].code() not in TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def count_raw(settings: Settings, source: str) -> int:
    return sum(hi - lo for lo, hi in high_watermarks(settings, source).values())


def read_raw(settings: Settings, source: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every record of ``raw.odds.<source>``, decoded, with ``_partition``, ``_offset``,
    ``_key`` and ``_timestamp`` (the Kafka timestamp, ms) added; per partition in offset order."""
    topic = topic_name(settings, raw_topic(source))
    marks = high_watermarks(settings, source)
    todo = {p: hi for p, (lo, hi) in marks.items() if hi > lo}
    if not todo:
        return []
    codec = default_codec()
    c = Consumer(consumer_config(settings, f"rawtopic-{uuid.uuid4().hex[:8]}"))
    out: list[dict[str, Any]] = []
    try:
        c.assign([TopicPartition(topic, p, marks[p][0]) for p in todo])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for msg in c.consume(10_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                p = msg.partition()
                rec = codec.decode(msg.value())
                rec["_partition"], rec["_offset"], rec["_key"] = p, msg.offset(), msg.key()
                rec["_timestamp"] = msg.timestamp()[1]
                out.append(rec)
                if p in todo and msg.offset() + 1 >= todo[p]:
                    del todo[p]
        if todo:
            raise TimeoutError(f"{topic}: partitions {sorted(todo)} not read to the end")
    finally:
        c.close()
    return out
