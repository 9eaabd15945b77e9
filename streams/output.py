"""The staging worker's output producer: promoted records out through librdkafka.

Why not faust's producer: each ``send`` of faust's aiokafka producer is a Python coroutine that
partitions, logs and appends the record (~30 µs); ``confluent_kafka.Producer.produce`` is one C
call per record, and ``flush`` waits (in a thread, the event loop keeps turning) until the broker
has every record. The worker flushes before it commits the input offsets that imply the records:
a crash can then only repeat outputs, never lose them. Idempotent and acks=all
(``producer_config``): a retry never reorders or doubles.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Producer

from oddsflow.kafka_config import producer_config
from oddsflow.settings import Settings

#: Seconds a flush may take before the worker gives up (librdkafka retries meanwhile).
FLUSH_TIMEOUT = 120.0


class OutputError(RuntimeError):
    """Some output did not reach the broker: the state that implies it must not be written."""


class OutputProducer:
    """Enqueue encoded records (``produce``), then ``flush`` before persisting state."""

    def __init__(self, settings: Settings) -> None:
        self._errors: list[str] = []
        self._producer = Producer(
            producer_config(
                settings,
                # the key -> partition mapping of faust's and the Java client's producers
                partitioner="murmur2_random",
                **{"linger.ms": 5, "delivery.report.only.error": True},
                on_delivery=self._failed,
            )
        )

    def _failed(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        produce = self._producer.produce
        while True:
            try:
                produce(topic, value, key)
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                self._producer.poll(0.05)

    async def flush(self) -> None:
        """Return when the broker has every record produced so far; raise if any failed."""
        left = await asyncio.to_thread(self._producer.flush, FLUSH_TIMEOUT)
        if left or self._errors:
            errors, self._errors = self._errors[:5], []
            raise OutputError(f"{left} output records unacknowledged; failures: {errors}")
