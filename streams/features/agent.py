"""The curated feature agent (faust): staged records in, curated records out, in event time.

Input: staging.odds_lines, staging.betting_splits and staging.games, all keyed by game id, so one
game's records share a partition number. Each input partition has its own engine and event-time
clock (``PartitionFeatures``): every flush and expiry decision is taken from that partition's
record order alone, so a replay, a restart or another worker makes the same decisions.

* Batches (``take_events``): records are processed one by one in partition order, and the state
  of every game a batch touched is written once per batch (``table.data`` plus
  ``send_changelog``), not after every record: a game's snapshot costs far more than a record.
* Idle flush: the engine holds each game's newest ``allowed_lateness`` minutes until event time
  moves on. A partition whose clock passes a game releases it (``partitioned.py``); at the end of
  the input nothing moves the clock, so a timer flushes a partition that has received nothing for
  ``[features] idle_flush_seconds`` of wall time (default 30;
  env ``ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS``).
  That is the one wall-clock decision: deterministic for a complete input (a backfill, a test),
  and in live data a record of a flushed game older than its newest record is counted late.
* Late records are not merged: each one becomes an ``operational.pipeline_events`` record
  (kind ``late_event``, event id from the input offset, so a replay upserts the same rows) and is
  counted in the returned counters.
* State: one changelogged table (in-memory store, rebuilt from the compacted changelog on
  start); games expire 12 h of event time after first pitch, with a tombstone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TP

from oddsflow.settings import Settings
from oddsflow.topics import spec, topic_name
from schemas.codec import default_codec
from streams.features.engine import Output
from streams.features.partitioned import GAME, LINE, SPLIT, PartitionFeatures

log = logging.getLogger("oddsflow.features")

INPUTS = {"staging.odds_lines": LINE, "staging.betting_splits": SPLIT, "staging.games": GAME}
OUTPUTS = (
    "curated.line_velocity",
    "curated.steam_moves",
    "curated.sharp_signals",
    "curated.consensus",
    "curated.feature_vectors",
)
EVENTS = "operational.pipeline_events"
BATCH_MAX = 2000
BATCH_WITHIN = 0.05  # seconds: a batch closes when full or after this long
IDLE_FLUSH_ENV = "ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS"  # [features] idle_flush_seconds


def register(app: faust.App, settings: Settings) -> Counter[str]:
    """Add the feature agent and its idle timer to ``app``; returns its live counters."""
    codec = default_codec()
    decode = codec.decode
    input_topics = {topic_name(settings, t): kind for t, kind in INPUTS.items()}
    kind_of = {codec.registry.get(spec(t).schema).fingerprint: k for t, k in INPUTS.items()}
    version_prefix = settings.features.output_prefix  # "" live; "v2." backfills a version
    out_names = {t: version_prefix + topic_name(settings, t) for t in OUTPUTS}
    encoders = {t: codec.encoder(spec(t).schema) for t in OUTPUTS}
    events_topic = version_prefix + topic_name(settings, EVENTS)
    encode_event = codec.encoder(spec(EVENTS).schema)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    idle_s = settings.features.idle_flush_seconds

    inputs = app.topic(*input_topics)
    # raw, not faust's default json: the values are bytes, which json writes as their repr
    # ("b'...'"), so a restarted worker could not read its own changelog back (recovery errors,
    # then no progress: the stall the chaos suite found after a SIGKILL or broker restart).
    state = app.Table(
        "features-state", partitions=settings.kafka.partitions, store="memory://features"
    )
    state.key_serializer = state.value_serializer = "raw"
    state.changelog_topic = state.changelog_topic.derive(
        key_serializer="raw", value_serializer="raw"
    )
    parts: dict[int, PartitionFeatures] = {}
    last_input: dict[int, float] = {}
    counters: Counter[str] = Counter()
    lock = asyncio.Lock()  # the agent and the idle timer never interleave on one engine

    topic_of_kind = {kind: name for name, kind in input_topics.items()}
    seen: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset delivered

    def partition(p: int) -> PartitionFeatures:
        pf = parts.get(p)
        if pf is None:
            pf = parts[p] = PartitionFeatures(settings.features, p)
            restored = pf.restore(dict(state.data.items()), decode, time.monotonic())
            if restored:
                log.info("features: partition %d resumed %d games from the table", p, restored)
        return pf

    async def emit(outputs: Iterable[Output]) -> None:
        producer = await app.maybe_start_producer()
        for topic, rec in outputs:
            counters[topic] += 1
            await producer.send(
                out_names[topic], rec["game_id"].encode(), encoders[topic](rec), None, None, None
            )

    async def report_late(late: list[tuple[str, int, int, dict[str, Any]]]) -> None:
        producer = await app.maybe_start_producer()
        now = datetime.now(UTC)
        for topic, p, offset, item in late:
            details = {
                "game_id": item["game_id"],
                "record_kind": item["kind"],
                "event_time": item["event_time"].isoformat(),
                "watermark": item["watermark"].isoformat(),
                "topic": topic,
                "partition": str(p),
                "offset": str(offset),
            }
            value = encode_event(
                {
                    "event_id": f"features|late|{topic}|{p}|{offset}",
                    "stage": "features",
                    "kind": "late_event",
                    "at": now,
                    "worker": worker,
                    "details": details,
                }
            )
            await producer.send(events_topic, b"features", value, None, None, None)

    async def durable() -> None:
        """Outputs go through the plain producer, outside the transaction that commits the
        state's changelog and the consumed offsets (faust derives transactions from the output
        topic, which this app does not consume). So wait until the broker has every output
        before the state that implies them is written: a crash can then only repeat outputs
        (identical records, absorbed by the sink's natural keys), never lose them."""
        await app.producer.flush()

    def persist(pf: PartitionFeatures) -> None:
        for key, value in pf.take_changes():
            if value is None:
                state.data.pop(key, None)
            else:
                state.data[key] = value
            state.send_changelog(pf.partition, key, value)

    def caught_up(p: int) -> Callable[[str], bool]:
        """Whether a topic of partition ``p`` has been delivered up to its end of log."""

        def check(kind: str) -> bool:
            tp = TP(topic_of_kind[kind], p)
            try:
                hi = app.consumer.highwater(tp)
            except Exception:  # not assigned (yet): nothing known, the idle rule decides
                return False
            last = seen.get((tp.topic, p))
            # +2: a transactional producer leaves a commit marker after its last record
            return hi is not None and (hi == 0 or (last is not None and last + 2 >= hi))

        return check

    async def release(ps: Iterable[int], now: float) -> None:
        """Feed each partition's aligned records to its engine; emit, report, persist."""
        out: list[Output] = []
        late: list[tuple[str, int, int, dict[str, Any]]] = []
        for p in sorted(ps):
            pf = parts[p]
            released = 0
            for kind, offset, rec in pf.inputs.release(now, caught_up(p)):
                out += pf.process(kind, rec)
                released += 1
                for item in pf.engine.drain_late():
                    late.append((topic_of_kind[kind], p, offset, item))
            if released:
                pf.queue_dirty = True
                counters["records"] += released
        await emit(out)
        if late:
            counters["late"] += len(late)
            await report_late(late)
        await durable()
        for p in sorted(ps):
            persist(parts[p])

    @app.agent(inputs, name="features")
    async def features(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            async with lock:
                now = time.monotonic()
                touched: set[int] = set()
                for event in batch:
                    msg = event.message
                    value: bytes = event.value
                    kind = kind_of.get(bytes(value[2:10]))
                    seen[(msg.topic, msg.partition)] = msg.offset
                    if kind is None:
                        counters["unknown_schema"] += 1
                        continue
                    pf = partition(msg.partition)
                    pf.inputs.put(kind, msg.offset, value, decode(value), now)
                    pf.queue_dirty = True
                    touched.add(msg.partition)
                for p in touched:
                    last_input[p] = now
                await release(touched, now)

    @app.timer(interval=0.5)
    async def idle_flush() -> None:
        now = time.monotonic()
        async with lock:
            waiting = [p for p in parts if parts[p].inputs.size]
            if waiting:
                await release(waiting, now)
            for p in sorted(parts):
                pf = parts[p]
                if now - last_input.get(p, now) >= idle_s and not pf.inputs.size and pf.pending():
                    out = pf.flush_all()
                    counters["idle_flushes"] += 1
                    await emit(out)
                    await durable()
                    persist(pf)

    @app.on_partitions_revoked.connect
    async def forget(app: faust.App, revoked: set[Any], **_: Any) -> None:
        # A revoked partition's state lives in the table; if it comes back, it is restored
        # from there rather than trusted from memory (another worker may have moved it on).
        for p in {tp.partition for tp in revoked if tp.topic in input_topics}:
            parts.pop(p, None)
            last_input.pop(p, None)

    return counters
