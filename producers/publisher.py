"""The one producer every collector publishes raw envelopes through.

Idempotent and ``acks=all``: a record counts as published only when its delivery report says the
broker has it. librdkafka retries transient failures itself; what still fails is counted and
reported, and :meth:`Publisher.close` flushes, so a shutdown never forgets an in-flight record.

Record timestamps are the observation's event time, given by the collector (a poll's fetch
time, a replayed row's recorded time, the simulator's fetch of a tick), so the broker,
``oddsflow replay --from`` (offsets by time) and consumers see the time the data is about, not
the time it happened to be published. A time in the future is published as now: an
observation cannot come from the future, and the broker refuses a record more than
``message.timestamp.after.max.ms`` (1 h) ahead — and with it every record of its batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import PUBLISHED_HEADER, raw_topic, topic_name
from producers.envelope import EnvelopeLayout
from schemas.codec import default_codec

log = logging.getLogger("oddsflow.publisher")
#: Errors that mean the broker did not answer (as opposed to answering no).
SILENT = (KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
ENVELOPE = "oddsflow.raw.RawEnvelope"


def published_now() -> list[tuple[str, bytes]]:
    return [(PUBLISHED_HEADER, str(int(time.time() * 1000)).encode())]


def timestamp_ms(at: datetime | None) -> int:
    """Kafka timestamp (ms) of an event time, never after now; 0 (None) lets the client use now."""
    if at is None:
        return 0
    return min(int(at.timestamp() * 1000), int(time.time() * 1000))


@dataclass
class PublishStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Publisher:
    """Publishes raw envelopes of one source to ``raw.odds.<source>``, keyed by event id."""

    def __init__(self, settings: Settings, source: str, **producer_overrides: Any) -> None:
        self.source = source
        self.settings = settings
        self.topic = topic_name(settings, raw_topic(source))
        # One delivery callback for every record, set once: cheaper than one per produce call.
        self._producer = Producer(
            producer_config(settings, **producer_overrides, on_delivery=self._delivered)
        )
        self._encode = default_codec().encoder(ENVELOPE)
        self.stats = PublishStats()

    def connect(self, timeout: float = 10.0) -> bool:
        """Meet the topic's leader now, before the first record; False if the broker is silent.

        Why: a fresh idempotent producer that is given records at once often waits 0.5-1 s
        before sending any (librdkafka 2.16 drops the bootstrap connection once it knows the
        cluster and retries the producer-id request on a 500 ms timer): here 15 of 15 fresh
        producers did, and 2 of 12 Pinnacle replays in one process took 0.5 s instead of
        0.05 s. The first metadata request may be answered by the bootstrap connection, the
        second only by the leader, so two are asked (~50 ms); afterwards 0 of 30 waited.
        Nothing changes if the broker does not answer: records then wait as before.

        First the topic is made (or aligned) with the catalog's configs, never left to the
        broker's auto-creation: that would take 1 MiB records at most, and keep
        ``raw.odds.file`` by time, deleting a replay of old rows minutes after publishing it.
        A client not allowed to administer topics publishes to the topic as it is (logged).
        """
        from core.admin import create_topics
        from core.topics import spec

        try:
            create_topics(self.settings, (spec(raw_topic(self.source)),))
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() in SILENT:
                return False
            log.warning("%s: topic configs not checked (%s); publishing anyway", self.topic, exc)
        try:
            for _ in range(2):
                self._producer.list_topics(self.topic, timeout=timeout)
        except KafkaException:
            return False
        return True

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.acked += 1
        else:
            self.stats.failed += 1
            if len(self.stats.errors) < 20:
                self.stats.errors.append(f"{msg.key()!r}: {err}")
            log.error("delivery failed for %r: %s", msg.key(), err)

    def publish(
        self,
        event_id: str,
        payload: bytes,
        fetched_at: datetime,
        content_type: str = "application/json",
        request: dict[str, str] | None = None,
        key: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """Publish one envelope. ``key`` (default: the event id) picks the partition: give all
        payloads of one game (or one feed) the same key to keep them in order. ``timestamp``:
        the observation's event time (default: now)."""
        value = self._encode(
            {
                "event_id": event_id,
                "source": self.source,
                "fetched_at": fetched_at,
                "content_type": content_type,
                "payload": payload,
                "request": request or {},
            }
        )
        self.publish_encoded((key or event_id).encode(), value, timestamp_ms(timestamp))

    def publish_encoded(self, key: bytes, value: bytes, timestamp: int = 0) -> None:
        """Produce one already-encoded record, waiting for queue space instead of failing.

        ``timestamp``: the record's Kafka timestamp in ms (0: now, the time of publishing).
        """
        self._produce_waiting(key, value, timestamp)
        self.stats.sent += 1
        if self.stats.sent % 1000 == 0:
            self._producer.poll(0)

    def publish_all(
        self, records: Iterable[tuple[bytes, bytes, int]], stop: Callable[[], bool] | None = None
    ) -> int:
        """Produce already-encoded (key, value, timestamp ms) records: the bulk form of
        :meth:`publish_encoded`.

        One tight loop (the simulator publishes 100k+ records a second from one process, where
        a method call per record is a tenth of the budget); delivery reports are counted by the
        same callback. ``stop`` is asked every 1,000 records. Timestamps after now are published
        as now (now is read every 1,000 records). Returns how many were produced.
        """
        produce, poll, topic = self._producer.produce, self._producer.poll, self.topic
        sent = 0
        now = int(time.time() * 1000)
        headers = published_now()
        try:
            for key, value, ts in records:
                ts = ts if ts <= now else now
                try:
                    produce(topic, value, key, timestamp=ts, headers=headers)
                except BufferError:
                    self._produce_waiting(key, value, ts)
                sent += 1
                if sent % 1000 == 0:
                    poll(0)
                    now = int(time.time() * 1000)
                    headers = published_now()
                    if stop is not None and stop():
                        break
        finally:
            self.stats.sent += sent
        return sent

    def _produce_waiting(self, key: bytes, value: bytes, timestamp: int = 0) -> None:
        """Produce, serving delivery reports while the local queue is full."""
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, timestamp=timestamp, headers=published_now()
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def layout(
        self, content_type: str = "application/json", request: dict[str, str] | None = None
    ) -> EnvelopeLayout:
        """The envelope layout of this publisher's source, for :meth:`publish_all` producers."""
        return EnvelopeLayout(self.source, content_type, request)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports (waiting up to ``timeout``): keeps ``stats.acked`` current."""
        return self._producer.poll(timeout)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every delivery report; returns how many are still outstanding."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 60.0) -> PublishStats:
        left = self.flush(timeout)
        if left:
            self.stats.failed += left
            self.stats.errors.append(f"{left} records unacknowledged after {timeout:.0f}s")
        return self.stats
