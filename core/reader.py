"""Read a whole topic as of now: every partition from its start (or a time) to its end.

For the operator's tools (dead-letter listing and replay, reconciliation, quality reports):
a throwaway consumer with partitions assigned, never a group member, so it commits nothing and
disturbs no worker.

A command that reads many topics shows its progress by setting :data:`progress` (a context
variable) to a callback: ``(topic, records read, records to read)``, called as each topic starts,
every :data:`PROGRESS_EVERY` records and when it ends — the readers below it need no parameter.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from core.kafka_config import consumer_config
from core.settings import Settings

Progress = Callable[[str, int, int], None]
progress: ContextVar[Progress | None] = ContextVar("oddsflow_read_progress", default=None)
PROGRESS_EVERY = 5000


def read_topic(
    settings: Settings, topic: str, since: datetime | None = None, timeout: float = 120.0
) -> Iterator[Message]:
    """Every committed record of ``topic`` (all partitions) as of now, from the first one written
    at or after ``since`` (the broker's time index) when given; nothing if it is absent."""
    group = f"{settings.kafka.topic_prefix}oddsflow-reader-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        md = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return
        parts = []
        total = 0  # offsets to read: records, and transaction markers on transactional topics
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            start = OFFSET_BEGINNING
            if since is not None and high > low:
                ms = int(since.timestamp() * 1000)
                [found] = consumer.offsets_for_times([TopicPartition(topic, p, ms)], timeout=10)
                start = found.offset if found.offset >= 0 else high
            if high > max(low, start):
                parts.append(TopicPartition(topic, p, start))
                total += high - max(low, start)
        report = progress.get()
        if report is not None:
            report(topic, 0, total)
        if not parts:
            return
        consumer.assign(parts)
        pending = {tp.partition for tp in parts}
        deadline = time.monotonic() + timeout
        read = 0
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end within {timeout:.0f}s")
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                err = msg.error()
                if err is None:
                    read += 1
                    if report is not None and read % PROGRESS_EVERY == 0:
                        report(topic, read, total)
                    yield msg
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise RuntimeError(f"reading {topic}: {err}")
        if report is not None:
            report(topic, total, total)
    finally:
        consumer.close()
