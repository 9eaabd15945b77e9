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

Crash safety (exactly_once): the state a partition restores must be the state after exactly
the inputs its stored positions name. Three things made it otherwise (the chaos defect):

* Faust's ``send_changelog`` only queues a write in a buffer that a background task hands to the
  partition's transactional producer one record at a time. A transaction commit (consumed
  offsets included) could overtake writes still in the buffer (state behind offsets: the records
  in between were never applied after a restart) or cut a batch's writes in two. So ``persist``
  appends a batch's writes to the partition's transactional producer itself, holding the lock
  faust's commit takes for that producer: a transaction holds all of a batch's writes or none.
* Faust computes the offsets to commit before it takes that lock, so a commit may still carry
  offsets older than the state in the same transaction. Each partition's entry therefore stores
  the next offset of every input topic (``PartitionFeatures.pos``, queued records included) and
  a restored partition skips what it has already consumed.
* A partition that gets no input after a restart was never loaded, so nothing flushed its
  held-back tail. The idle timer loads every assigned partition once recovery is over.

Any error in the agent or the timer exits the process (status 70): its in-memory state may have
moved past what is committed, and only a restart from the committed state is exact.
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
from streams.fatal import exit_for_restart
from streams.features.engine import Output
from streams.features.output import OutputProducer
from streams.features.partitioned import GAME, LINE, SPLIT, PartitionFeatures, split_entries

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
BATCH_MAX = 4000
BATCH_WITHIN = 0.1  # seconds: a batch closes when full or after this long
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

    def load(ps: Iterable[int], now: float) -> None:
        """Restore partitions from the table (parsed once for all of them)."""
        new = [p for p in ps if p not in parts]
        if not new:
            return
        by_partition = split_entries(state.data.items())
        for p in new:
            pf = parts[p] = PartitionFeatures(settings.features, p)
            restored = pf.restore(by_partition.get(p, {}), decode, now)
            for kind, nxt in pf.pos.items():  # what was consumed counts as delivered
                seen[(topic_of_kind[kind], p)] = nxt - 1
            last_input.setdefault(p, now)
            if restored:
                log.info("features: partition %d resumed %d games from the table", p, restored)

    def partition(p: int) -> PartitionFeatures:
        pf = parts.get(p)
        if pf is None:
            load((p,), time.monotonic())
            pf = parts[p]
        return pf

    out_producer: list[OutputProducer] = []  # made on first use, in the worker process

    def producer() -> OutputProducer:
        if not out_producer:
            out_producer.append(OutputProducer(settings))
        return out_producer[0]

    def emit(outputs: Iterable[Output]) -> None:
        produce = producer().produce
        sent: Counter[str] = Counter()
        for topic, rec in outputs:
            sent[topic] += 1
            produce(out_names[topic], rec["game_id"].encode(), encoders[topic](rec))
        counters.update(sent)

    def report_late(late: list[tuple[str, int, int, dict[str, Any]]]) -> None:
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
            producer().produce(events_topic, b"features", value)

    async def durable() -> None:
        """Outputs go through their own producer (``output.py``), outside the transaction that
        commits the state's changelog and the consumed offsets. So wait until the broker has
        every output before the state that implies them is written: a crash can then only repeat
        outputs (identical records, absorbed by the sink's natural keys), never lose them."""
        if out_producer:
            await out_producer[0].flush()

    changelog = state.changelog_topic.get_topic_name()

    async def persist(pf: PartitionFeatures) -> None:
        """Write the partition's changes into its open transaction, all in one go."""
        changes = pf.take_changes()
        if not changes:
            return
        data = state.data
        for key, value in changes:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        p = pf.partition
        if not app.in_transaction:  # at_least_once: appended before the acks, flushed at commit
            producer = await app.maybe_start_producer()
            for key, value in changes:
                await producer.send(changelog, key, value, p, None, None)
            return
        # faust's aiokafka driver: one transactional producer per assigned partition, and the
        # lock its commit_transactions holds around sending the offsets and committing.
        tid = f"{app.conf.id}-{app.assignor.group_for_topic(changelog)}-{p}"
        driver: Any = app.producer
        txn = driver._transaction_producers.get(tid)
        if txn is None:
            raise RuntimeError(f"no transactional producer for partition {p} ({tid})")
        async with driver._trn_locks[tid]:
            for key, value in changes:
                await txn.send(changelog, value, key=key, partition=p)

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
        emit(out)
        if late:
            counters["late"] += len(late)
            report_late(late)
        await durable()
        for p in sorted(ps):
            await persist(parts[p])

    @app.agent(inputs, name="features")
    async def features(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            async with lock:
                try:
                    await take(batch)
                except Exception:
                    fatal("the features agent")

    async def take(batch: list[Any]) -> None:
        now = time.monotonic()
        touched: set[int] = set()
        for event in batch:
            msg = event.message
            p = msg.partition
            topic_kind = input_topics[msg.topic]
            seen[(msg.topic, p)] = msg.offset
            pf = partition(p)
            if msg.offset < pf.pos.get(topic_kind, 0):
                counters["replayed"] += 1  # consumed before a restart: in the restored state
                continue
            pf.pos[topic_kind] = msg.offset + 1
            pf.queue_dirty = True
            touched.add(p)
            value: bytes = event.value
            kind = kind_of.get(bytes(value[2:10]))
            if kind is None:
                counters["unknown_schema"] += 1
                continue
            pf.inputs.put(kind, msg.offset, value, decode(value), now)
        for p in touched:
            last_input[p] = now
        await release(touched, now)

    def fatal(where: str) -> None:
        exit_for_restart(log, "features", where)

    def recovered() -> bool:
        return not (app.rebalancing or app.in_recovery) and app.tables.recovery.completed.is_set()

    @app.timer(interval=0.5)
    async def idle_flush() -> None:
        async with lock:
            try:
                await tick(time.monotonic())
            except Exception:
                fatal("the idle timer")

    async def tick(now: float) -> None:
        if recovered():  # partitions with nothing more to read still have a tail to flush
            load(
                {tp.partition for tp in app.consumer.assignment() if tp.topic in input_topics},
                now,
            )
        waiting = [p for p in parts if parts[p].inputs.size]
        if waiting:
            await release(waiting, now)
        for p in sorted(parts):
            pf = parts[p]
            if now - last_input.get(p, now) >= idle_s and not pf.inputs.size and pf.pending():
                out = pf.flush_all()
                counters["idle_flushes"] += 1
                emit(out)
                await durable()
                await persist(pf)

    @app.on_partitions_revoked.connect
    async def forget(app: faust.App, revoked: set[Any], **_: Any) -> None:
        # A revoked partition's state lives in the table; if it comes back, it is restored
        # from there rather than trusted from memory (another worker may have moved it on).
        async with lock:
            for p in {tp.partition for tp in revoked if tp.topic in input_topics}:
                parts.pop(p, None)
                last_input.pop(p, None)
                for topic in input_topics:
                    seen.pop((topic, p), None)

    return counters
