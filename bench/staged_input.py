"""Staged input and curated output over Kafka, for the feature tests and the worker benchmark.

Staging runs in process (the real parsers and validators of ``StagingProcessor``) and its
records are published straight to the staging topics, so a test or a benchmark measures the
feature worker alone. Records are partitioned like faust partitions them (murmur2 on the game id
key): the feature worker's changelog and outputs line up with its inputs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from core.kafka_config import consumer_config, producer_config
from core.settings import Settings
from core.topics import raw_topic, topic_name
from schemas.codec import default_codec
from streams.staging.dedupe import IDENTITY
from streams.staging.processor import GAME, LINE, SPLIT, Origin, StagingProcessor

STAGING_TOPIC = {LINE: "staging.odds_lines", SPLIT: "staging.betting_splits", GAME: "staging.games"}
KIND = {LINE: "line", SPLIT: "split", GAME: "game"}
Staged = tuple[str, bytes, bytes]  # (catalog topic, key, encoded value)
#: (source, event id, payload, fetched_at, content type, request metadata)
Envelope = tuple[str, str, bytes, datetime, str, dict[str, str]]


def stage(envelopes: Iterable[Envelope], dedupe: bool = False) -> tuple[list[Staged], int]:
    """Raw envelopes → encoded staging records in input order, and the number of dead letters.

    ``fetched_at`` is the envelope's, never the wall clock, so the same envelopes always stage
    to the same bytes (ingestion time breaks ties between records of one instant). ``dedupe``
    forwards a record only when its values changed for its identity, as the staging worker does
    for sources that re-send unchanged snapshots (the simulator).
    """
    codec = default_codec()
    decode = codec.decode
    last: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    encode = codec.encoder("oddsflow.raw.RawEnvelope")
    proc = StagingProcessor()
    out: list[Staged] = []
    dead = 0
    for offset, (source, event_id, payload, fetched_at, ctype, request) in enumerate(envelopes):
        value = encode(
            {
                "event_id": event_id,
                "source": source,
                "fetched_at": fetched_at,
                "content_type": ctype,
                "payload": payload,
                "request": request,
            }
        )
        origin = Origin(raw_topic(source), 0, offset, event_id.encode())
        result = proc.process(origin, value, now=fetched_at)
        dead += len(result.dead)
        for schema, key, val in result.records:
            if dedupe:
                rec = decode(val)
                ident, fields = IDENTITY[schema]
                k = (schema, *(rec[f] for f in ident))
                v = tuple(rec[f] for f in fields)
                if last.get(k) == v:
                    continue
                last[k] = v
            out.append((STAGING_TOPIC[schema], key, val))
    return out, dead


def decoded(staged: Iterable[Staged]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) pairs as the feature worker decodes them: the reference's input."""
    decode = default_codec().decode
    kind_of = {v: KIND[k] for k, v in STAGING_TOPIC.items()}
    return [(kind_of[topic], decode(value)) for topic, _, value in staged]


def publish_staged(settings: Settings, staged: Iterable[Staged]) -> int:
    """Produce staged records in order (one idempotent producer); returns the acked count."""
    acked = [0]

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1

    producer = Producer(producer_config(settings, partitioner="murmur2_random"))
    names = {t: topic_name(settings, t) for t in STAGING_TOPIC.values()}
    for topic, key, value in staged:
        while True:
            try:
                producer.produce(names[topic], value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("staged records left unacknowledged after 60 s")
    return acked[0]


class TopicReader:
    """Reads whole topics from the beginning (committed records only), accumulating them."""

    def __init__(self, settings: Settings, topics: Iterable[str]) -> None:
        self.names = {topic_name(settings, t): t for t in topics}
        self.records: dict[str, list[dict[str, Any]]] = {t: [] for t in self.names.values()}
        self._decode = default_codec().decode
        self._c = Consumer(consumer_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))
        assign = []
        for name in self.names:
            meta = self._c.list_topics(name, timeout=10).topics[name]
            assign += [TopicPartition(name, p, 0) for p in meta.partitions]
        self._c.assign(assign)

    def poll(self, seconds: float = 0.5) -> int:
        """Consume what is available for up to ``seconds``; returns how many records were read."""
        n = 0
        deadline = time.monotonic() + seconds
        while True:
            msgs = self._c.consume(10_000, timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            for msg in msgs:
                if msg.error() is not None:
                    continue
                self.records[self.names[msg.topic()]].append(self._decode(msg.value()))
                n += 1
            if not msgs and time.monotonic() >= deadline:
                return n

    def count(self, topic: str) -> int:
        return len(self.records[topic])

    def close(self) -> None:
        self._c.close()
