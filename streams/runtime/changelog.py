"""State topics: compacted changelogs written in the loop's transactions and read back whole.

A task's state for input partition p lives in partition p of its changelog, so a worker that is
given p reads exactly that partition (to its end, read_committed) and has the state that matches
the offsets it resumes from: both were committed by the same transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from core.admin import admin_client
from core.kafka_config import consumer_config
from core.reader import read_to_end
from core.settings import Settings
from streams.runtime.task import Entry

#: How long a topic just created may take to appear in the broker's metadata.
VISIBLE_TIMEOUT = 30.0


def ensure_topic(settings: Settings, topic: str, partitions: int, compact: bool = True) -> None:
    """Create ``topic`` (compacted unless ``compact`` is False) with ``partitions`` partitions
    unless it exists, and return once the broker's metadata lists it.

    Why wait: the worker subscribes right after. A subscribed topic missing from the metadata
    at the group join is left out of the assignment until librdkafka's periodic metadata
    refresh (``topic.metadata.refresh.interval.ms``, 5 minutes): a staging worker that joined
    330 ms after creating its repartition topic on a busy broker normalized everything and
    de-duplicated nothing for minutes.
    """
    admin = admin_client(settings)
    if topic in admin.list_topics(timeout=30).topics:
        return
    new = NewTopic(
        topic,
        num_partitions=partitions,
        replication_factor=settings.kafka.replication_factor,
        config={"cleanup.policy": "compact"} if compact else {},
    )
    for future in admin.create_topics([new], operation_timeout=30).values():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + VISIBLE_TIMEOUT
    while True:  # the metadata can only be asked again: there is nothing to wait on
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) >= partitions:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} was created but is not in the metadata yet")
        time.sleep(0.1)


def read_partitions(
    settings: Settings,
    topic: str,
    partitions: set[int],
    group: str,
    timeout: float,
    progress: Callable[[], None] = lambda: None,
) -> dict[int, list[Entry]]:
    """Every committed entry of ``topic``'s ``partitions``, oldest first, per partition."""
    out: dict[int, list[Entry]] = {p: [] for p in partitions}
    if not partitions:
        return out
    reader = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        starts = dict.fromkeys(partitions, OFFSET_BEGINNING)
        for msg in read_to_end(reader, topic, starts, timeout, on_batch=progress, strict=False):
            out[msg.partition()].append((msg.key(), msg.value()))
        return out
    finally:
        reader.close()


def latest(entries: list[Entry]) -> dict[bytes, bytes]:
    """The live entries of a partition's changelog: last value per key, deletions applied."""
    state: dict[bytes, bytes] = {}
    for key, value in entries:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state
