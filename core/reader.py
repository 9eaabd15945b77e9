"""Read partitions to their end: the one read-to-end loop of the project.

:func:`read_to_end` reads assigned partitions until each reports its end (partition EOF, which
also passes over a transaction's closing marker, where counting up to a high watermark would
wait forever); :func:`read_topic` is a whole topic as of now, from its start (or a time), for
the operator's tools (dead-letter listing and replay, reconciliation, quality reports) and the
tests; the stream runtime restores its changelogs with :func:`read_to_end` too
(``streams.runtime.changelog.read_partitions``). A throwaway consumer with partitions assigned,
never a group member: it commits nothing and disturbs no worker. Where the partitions end is
asked through :func:`core.offsets.topic_watermarks`, which waits out a new topic's leader.

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

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from core.kafka_config import consumer_config
from core.offsets import topic_watermarks
from core.settings import Settings

Progress = Callable[[str, int, int], None]
progress: ContextVar[Progress | None] = ContextVar("oddsflow_read_progress", default=None)
PROGRESS_EVERY = 5000


def read_to_end(
    consumer: Consumer,
    topic: str,
    starts: dict[int, int],
    timeout: float,
    on_batch: Callable[[], None] | None = None,
    strict: bool = True,
) -> Iterator[Message]:
    """Every record of ``topic``'s partitions from ``starts`` (``{partition: offset}``) until
    each partition reports its end; ``consumer`` must have ``enable.partition.eof``.

    ``on_batch``: called after each batch read (a heartbeat for a long restore). ``strict``: any
    error but the end raises (the operator's tools: say what is wrong at once); else only a fatal
    one does and librdkafka retries the rest (a worker restoring across a broker restart).
    Raises TimeoutError when the partitions are not all read within ``timeout`` seconds."""
    if not starts:
        return
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    pending = set(starts)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"reading {topic} {sorted(pending)} did not reach its end within {timeout:.0f}s"
            )
        msgs = consumer.consume(num_messages=10_000, timeout=0.2)
        if msgs and on_batch is not None:
            on_batch()
        for msg in msgs:
            err = msg.error()
            if err is None:
                yield msg
            elif err.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
            elif strict:
                raise RuntimeError(f"reading {topic}: {err}")
            elif err.fatal():
                raise KafkaException(err)


def read_topic(
    settings: Settings,
    topic: str,
    since: datetime | None = None,
    timeout: float = 120.0,
    partitions: set[int] | None = None,
) -> Iterator[Message]:
    """Every committed record of ``topic`` (all partitions, or ``partitions``) as of now, from
    the first one written at or after ``since`` (the broker's time index) when given; nothing if
    the topic is absent."""
    group = f"{settings.kafka.topic_prefix}oddsflow-reader-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        starts: dict[int, int] = {}
        total = 0  # offsets to read: records, and transaction markers on transactional topics
        for p, (low, high) in topic_watermarks(consumer, topic).items():
            if partitions is not None and p not in partitions:
                continue
            start = OFFSET_BEGINNING
            if since is not None and high > low:
                ms = int(since.timestamp() * 1000)
                [found] = consumer.offsets_for_times([TopicPartition(topic, p, ms)], timeout=10)
                start = found.offset if found.offset >= 0 else high
            if high > max(low, start):
                starts[p] = start
                total += high - max(low, start)
        report = progress.get()
        if report is not None:
            report(topic, 0, total)
        for read, msg in enumerate(read_to_end(consumer, topic, starts, timeout), 1):
            if report is not None and read % PROGRESS_EVERY == 0:
                report(topic, read, total)
            yield msg
        if report is not None and starts:
            report(topic, total, total)
    finally:
        consumer.close()
