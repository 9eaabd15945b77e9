"""What the staging zone promoted: written through librdkafka, read back as the de-dup state.

The de-dup state of a repartition partition is rebuilt from the same partition number of
staging.odds_lines, staging.betting_splits and staging.games (the dedupe agent writes each output
to the partition its input came from), so state can never claim an emission the outputs lack.
Blocking (confluent-kafka): the agent runs it in an executor thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from oddsflow.kafka_config import consumer_config
from oddsflow.settings import Settings
from schemas.codec import default_codec
from streams.output import OutputProducer
from streams.staging.dedupe import SOURCE_OFFSET_HEADER, PartitionState, Position, parse_position

log = logging.getLogger("oddsflow.staging")


def _source_offset(headers: list[tuple[str, bytes]] | None) -> Position | None:
    """The repartition position an output was decided from (its SOURCE_OFFSET_HEADER)."""
    for name, value in headers or ():
        if name == SOURCE_OFFSET_HEADER and value:
            return parse_position(value)
    return None


def rebuild_partition(
    settings: Settings,
    topics: Mapping[str, str],
    partition: int,
    timeout: float = 120.0,
) -> tuple[PartitionState, int]:
    """State of ``partition`` from the committed records of ``topics`` (schema → topic name).

    Returns the state and the number of output records read. Reads each topic's partition from
    its first record to its end (the last stable offset: read_committed).
    """
    codec = default_codec()
    group = f"{settings.kafka.topic_prefix}oddsflow-staging-rebuild"
    consumer = Consumer(
        consumer_config(settings, group, **{"enable.partition.eof": True, "fetch.min.bytes": 1})
    )
    state = PartitionState()
    read = 0
    try:
        pending: set[str] = set()
        assign = []
        for topic in topics.values():
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                pending.add(topic)
                assign.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        schema_of = {topic: schema for schema, topic in topics.items()}
        if assign:
            consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading back staging outputs of partition {partition}")
            for msg in consumer.consume(num_messages=2000, timeout=0.1):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.topic())
                        continue
                    raise RuntimeError(f"reading back {msg.topic()}: {err}")
                value = msg.value()
                if not value:
                    continue  # a compaction tombstone: nothing was promoted under it
                state.load(
                    schema_of[msg.topic()], codec.decode(value), _source_offset(msg.headers())
                )
                read += 1
    finally:
        consumer.close()
    state.sweep()  # games past the TTL at the outputs' event-time watermark
    return state, read


class PromotedWriter(OutputProducer):
    """The dedupe agent's output producer: one C call per promoted record, flushed per batch.

    Why not faust's producer: its ``send`` is a Python coroutine per record (~30 µs, ~12% of the
    worker). The features worker's librdkafka producer (idempotent, acks=all; ``flush`` in a
    thread), with an explicit partition and the position header. Crash safety is unchanged: the
    agent awaits ``flush`` before its batch body returns, so before faust acks (and later
    commits) the inputs; per output partition what reached the broker is a prefix of what was
    produced, in order — what the rebuilt state relies on (DESIGN.md, "Staging").
    """

    def produce_at(
        self, topic: str, key: bytes, value: bytes, partition: int, position: bytes
    ) -> None:
        """Enqueue one promoted record on ``partition`` with its repartition position header."""
        headers = [(SOURCE_OFFSET_HEADER, position)]
        while True:
            try:
                self._producer.produce(topic, value, key, partition=partition, headers=headers)
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                self._producer.poll(0.05)
