"""The curated feature worker: staged records in, curated records out, exactly once.

Input: staging.odds_lines, staging.betting_splits and staging.games, all keyed by game id, so one
game's records share a partition number, and the ``range`` assignor gives one worker the same
partition number of all three. Each input partition has its own engine and event-time clock
(``PartitionFeatures``): every flush and expiry decision is taken from that partition's record
order alone, so a replay, a restart or another worker makes the same decisions.

Why a Kafka transaction loop and not a faust agent (it was one until 2026-11-26): the state of a
partition, the curated records it implies and the input offsets it has consumed must move
together, or a crash leaves them apart. faust's exactly_once could not promise that here: its
changelog writes go through a buffer that a commit can overtake, it computes the offsets to
commit before taking the producer's lock, and after a broker restart a SIGKILLed worker's
restarted twin could leave a game's held-back tail unreleased (issue #10; three root causes
fixed, the fourth intermittent). Here each batch is one transaction of librdkafka's producer:
its curated records, its late-event reports, the state changes of the partitions it touched
(``<group>-features-state-changelog``, compacted, partition = input partition) and the consumed
offsets (``send_offsets_to_transaction``). The broker commits all of it or none; a restarted
worker restores the state from the changelog and resumes from the committed offsets, which are
the same point by construction. It is also 4x faster: faust's per-message path cost ~90 µs a
record on top of the ~40 µs of feature work.

* Batches: up to ``BATCH_MAX`` records or ``BATCH_WITHIN`` seconds; every game a batch touched
  is written to the changelog once per batch (a game's snapshot costs far more than a record).
* Idle flush: the engine holds each game's newest ``allowed_lateness`` minutes until event time
  moves on. At the end of the input nothing moves the clock, so a partition that has received
  nothing for ``[features] idle_flush_seconds`` of wall time (default 30; env
  ``ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS``) releases its tail. That is the one wall-clock
  decision: deterministic for a complete input (a backfill, a test).
* Late records are not merged: each becomes an ``operational.pipeline_events`` record (kind
  ``late_event``, event id from the input offset, so a replay upserts the same rows).
* Zombies: the transactional id and the static group member id are ``<group>-<host>-<slot>``,
  the slot a file lock under the state folder. A SIGKILLed worker's successor takes the same
  slot, so ``init_transactions`` aborts what the dead one left open at once (a stranger's open
  transaction would hold every read_committed reader back until it timed out) and the group
  hands it the same partitions without waiting for the old session to expire.

An error the transaction cannot recover from exits the process (status 70, ``streams.fatal``);
an abortable one aborts and rewinds to the committed state in process. A loop that stops
turning is exited too (``STALL_EXIT_SECONDS``, with a thread dump in the log): after a broker
restart, librdkafka's ``send_offsets_to_transaction`` can block far past its timeout while it
holds a stale group coordinator (librdkafka issues #5456 and #5511, open; seen here in 2 of 4
full chaos runs, 10 minutes once). The restarted process fences the stuck transaction and
resumes from the committed state, so the stall costs time, never a record.
"""

from __future__ import annotations

import faulthandler
import fcntl
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import NewTopic

from oddsflow.admin import admin_client
from oddsflow.kafka_config import consumer_config, producer_config
from oddsflow.settings import Settings
from oddsflow.topics import spec, topic_name
from schemas.codec import default_codec
from streams.fatal import EX_SOFTWARE
from streams.features.engine import Output
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
STATE_TABLE = "features-state"
BATCH_MAX = 20000
BATCH_WITHIN = 0.1  # seconds a consume waits for a batch to fill
TICK_SECONDS = 0.5  # how often queued inputs and idle partitions are looked at
IDLE_FLUSH_ENV = "ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS"  # [features] idle_flush_seconds
#: How long a transaction call may keep retrying (a broker restart) before the worker gives up.
TXN_TIMEOUT = 120.0
#: A loop that has not turned for this long is stuck somewhere no timeout covers: exit and
#: restart from the committed state (longer than any bounded wait above, shorter than the
#: group's max.poll.interval, after which Kafka would hand the partitions on anyway).
STALL_EXIT_SECONDS = 180.0
SLOTS = 64


def features_group(settings: Settings) -> str:
    """The consumer group (and transactional id stem); a backfilled version has its own."""
    group = f"{settings.kafka.topic_prefix}oddsflow-features"
    version = settings.features.output_prefix.strip(".")
    return f"{group}-{version}" if version else group


def state_topic(settings: Settings) -> str:
    """The compacted changelog of the worker's state (the name faust gave it, kept)."""
    return f"{features_group(settings)}-{STATE_TABLE}-changelog"


def input_topics(settings: Settings) -> list[str]:
    return [topic_name(settings, t) for t in INPUTS]


def output_topics(settings: Settings) -> list[str]:
    prefix = settings.features.output_prefix
    return [prefix + topic_name(settings, t) for t in (*OUTPUTS, EVENTS)]


class FatalError(RuntimeError):
    """The worker cannot go on in process: exit and restart from the committed state."""


def _claim_slot(folder: Path, group: str) -> tuple[int, IO[bytes]]:
    """The lowest slot no live worker of ``group`` on this host holds (a file lock dies with its
    process, so a killed worker's successor takes the same slot)."""
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        fh = open(folder / f"{group}.slot{slot}.lock", "wb")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        return slot, fh
    raise FatalError(f"more than {SLOTS} features workers of {group} on this host")


class FeaturesWorker:
    """One process of the features role: ``run(stop)`` until ``stop`` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        codec = default_codec()
        self._decode = codec.decode
        self._topics = {topic_name(settings, t): kind for t, kind in INPUTS.items()}
        self._topic_of_kind = {kind: name for name, kind in self._topics.items()}
        self._kind_of = {
            codec.registry.get(spec(t).schema).fingerprint: k for t, k in INPUTS.items()
        }
        prefix = settings.features.output_prefix  # "" live; "v2." backfills a version
        self._out_names = {t: prefix + topic_name(settings, t) for t in OUTPUTS}
        self._encoders = {t: codec.encoder(spec(t).schema) for t in OUTPUTS}
        self._events_topic = prefix + topic_name(settings, EVENTS)
        self._encode_event = codec.encoder(spec(EVENTS).schema)
        self.group = features_group(settings)
        self.state_topic = state_topic(settings)
        self._idle_s = settings.features.idle_flush_seconds
        self._worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.counters: Counter[str] = Counter()
        self.parts: dict[int, PartitionFeatures] = {}
        self.assigned: set[int] = set()
        self._last_input: dict[int, float] = {}
        self._seen: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset read
        self._offsets: dict[tuple[str, int], int] = {}  # to commit with the open transaction
        self._in_txn = False
        self.restoring = False
        self.beat = time.monotonic()  # the loop's own heartbeat (readiness, stall watchdog)
        self.doing = "starting"  # what the loop is doing now, for the stall watchdog's message
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._slot_lock: IO[bytes] | None = None

    # ------------------------------------------------------------------ set-up

    def _ensure_state_topic(self) -> None:
        admin = admin_client(self.settings)
        topics = admin.list_topics(timeout=30).topics
        if self.state_topic in topics:
            return
        lines = topics.get(topic_name(self.settings, "staging.odds_lines"))
        partitions = len(lines.partitions) if lines else self.settings.kafka.partitions
        new = NewTopic(
            self.state_topic,
            num_partitions=partitions,
            replication_factor=self.settings.kafka.replication_factor,
            config={"cleanup.policy": "compact"},
        )
        for future in admin.create_topics([new], operation_timeout=30).values():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def start(self) -> None:
        """Create the state topic, claim a slot, fence the slot's previous owner, subscribe."""
        self._ensure_state_topic()
        slot, self._slot_lock = _claim_slot(
            self.settings.state_dir / "features", self.group.replace("/", "_")
        )
        instance = f"{self.group}-{socket.gethostname()}-{slot}"
        self._producer = Producer(
            producer_config(
                self.settings,
                partitioner="murmur2_random",  # faust's and the Java client's key -> partition
                **{
                    "transactional.id": instance,
                    "transaction.timeout.ms": 60_000,
                    "linger.ms": 5,
                    "delivery.report.only.error": True,
                },
                on_delivery=self._failed,
            )
        )
        self._retrying("init_transactions", self._producer.init_transactions)
        self._consumer = Consumer(
            consumer_config(
                self.settings,
                self.group,
                **{
                    "partition.assignment.strategy": "range",  # one partition number, 3 topics
                    "group.instance.id": instance,
                    "session.timeout.ms": 10_000,
                    "heartbeat.interval.ms": 2_000,
                    "fetch.wait.max.ms": self.settings.worker.fetch_max_wait_ms,
                    "max.poll.interval.ms": 300_000,
                },
            )
        )
        self._consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )  # fmt: skip
        log.info("features worker %s subscribed as %s", self._worker_name, instance)

    def _failed(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:  # inside a transaction: the commit fails and says so
            log.warning("features: delivery to %s failed: %s", msg.topic(), err)

    # ------------------------------------------------------------------ assignment and state

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        ps = {tp.partition for tp in partitions if tp.topic in self._topics}
        self.assigned |= ps
        self._restore(ps - set(self.parts))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is open here: a transaction commits before the next consume, where
        # revocations are delivered. A revoked partition's state is read back from the changelog
        # if it returns (another worker may have moved it on meanwhile).
        for p in {tp.partition for tp in partitions if tp.topic in self._topics}:
            self.assigned.discard(p)
            self.parts.pop(p, None)
            self._last_input.pop(p, None)
            for topic in self._topics:
                self._seen.pop((topic, p), None)

    def _read_changelog(self, ps: set[int]) -> list[tuple[bytes, bytes | None]]:
        """Every committed entry of the changelog partitions ``ps``, oldest first."""
        reader = Consumer(
            consumer_config(
                self.settings, f"{self.group}-restore", **{"enable.partition.eof": True}
            )
        )
        try:
            reader.assign([TopicPartition(self.state_topic, p, OFFSET_BEGINNING) for p in ps])
            open_parts = set(ps)
            items: list[tuple[bytes, bytes | None]] = []
            deadline = time.monotonic() + TXN_TIMEOUT
            while open_parts:
                if time.monotonic() > deadline:
                    raise FatalError(f"could not read {self.state_topic} {sorted(open_parts)}")
                msgs = reader.consume(10_000, timeout=0.5)
                if msgs:
                    self.beat = time.monotonic()  # reading is progress
                for msg in msgs:
                    err = msg.error()
                    if err is None:
                        items.append((msg.key(), msg.value()))
                    elif err.code() == KafkaError._PARTITION_EOF:
                        open_parts.discard(msg.partition())
                    elif err.fatal():
                        raise KafkaException(err)
            return items
        finally:
            reader.close()

    def _restore(self, ps: set[int]) -> None:
        """Install the committed state of partitions ``ps`` (the offsets the group resumes from
        were committed in the same transactions as this state)."""
        if not ps:
            return
        self.restoring = True
        self.doing = f"restoring partitions {sorted(ps)}"
        t0 = time.monotonic()
        try:
            entries: dict[bytes, bytes] = {}
            for key, value in self._read_changelog(ps):
                if value is None:
                    entries.pop(key, None)
                else:
                    entries[key] = value
            by_partition = split_entries(entries.items())
            now = time.monotonic()
            for p in sorted(ps):
                pf = self.parts[p] = PartitionFeatures(self.settings.features, p)
                games = pf.restore(by_partition.get(p, {}), self._decode, now)
                for kind, nxt in pf.pos.items():  # what was consumed counts as read
                    self._seen[(self._topic_of_kind[kind], p)] = nxt - 1
                self._last_input[p] = now
                log.warning(
                    "features: partition %d restored in %.1f s (%d games, %d queued records)",
                    p, time.monotonic() - t0, games, pf.inputs.size,
                )  # fmt: skip
        finally:
            self.restoring = False

    # ------------------------------------------------------------------ transactions

    def _retrying(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """Call a transactional API, retrying what librdkafka calls retriable (broker away)."""
        deadline = time.monotonic() + TXN_TIMEOUT
        while True:
            try:
                return call(*args, 30)
            except KafkaException as exc:
                err = exc.args[0]
                if err.retriable() and time.monotonic() < deadline:
                    log.warning("features: %s will be retried: %s", what, err)
                    continue
                raise

    def _begin(self) -> None:
        if not self._in_txn:
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_txn = True

    def _produce(self, topic: str, key: bytes, value: bytes | None, partition: int = -1) -> None:
        self._begin()
        producer = self._producer
        assert producer is not None
        while True:
            try:
                if partition >= 0:
                    producer.produce(topic, value, key, partition)
                else:
                    producer.produce(topic, value, key)
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                producer.poll(0.05)

    def _commit(self) -> None:
        """Commit the open transaction (outputs, state, offsets); on an abortable error, abort
        and rewind every partition to the committed state."""
        if not self._in_txn and not self._offsets:
            return
        consumer, producer = self._consumer, self._producer
        assert consumer is not None and producer is not None
        self._begin()
        try:
            if self._offsets:
                offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
                self._retrying(
                    "send_offsets_to_transaction",
                    producer.send_offsets_to_transaction,
                    offsets,
                    consumer.consumer_group_metadata(),
                )
            self._retrying("commit_transaction", producer.commit_transaction)
        except KafkaException as exc:
            err = exc.args[0]
            if not err.txn_requires_abort():
                raise FatalError(f"transaction failed: {err}") from exc
            log.warning("features: transaction aborted (%s); rewinding to committed state", err)
            self._retrying("abort_transaction", producer.abort_transaction)
            self._in_txn = False
            self._offsets.clear()
            self._rewind()
            return
        self._in_txn = False
        self._offsets.clear()

    def _rewind(self) -> None:
        """Forget the in-memory state and re-read it and the input positions as committed."""
        consumer = self._consumer
        assert consumer is not None
        self.counters["rewinds"] += 1
        ps = set(self.assigned)
        self.parts.clear()
        self._seen.clear()
        tps = [TopicPartition(t, p) for t in self._topics for p in ps]
        for tp in consumer.committed(tps, timeout=60):
            consumer.seek(
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0)
            )
        self._restore(ps)

    # ------------------------------------------------------------------ processing

    def _emit(self, outputs: list[Output]) -> None:
        """Curated records into the open transaction (the hot path: ~3 a staged line)."""
        if not outputs:
            return
        self._begin()
        assert self._producer is not None
        produce = self._producer.produce
        names, encoders = self._out_names, self._encoders
        for topic, rec in outputs:
            name, key, value = names[topic], rec["game_id"].encode(), encoders[topic](rec)
            try:
                produce(name, value, key)
            except BufferError:  # the local queue is full: wait for room
                self._produce(name, key, value)
        self.counters.update(topic for topic, _ in outputs)

    def _report_late(self, late: list[tuple[str, int, int, dict[str, Any]]]) -> None:
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
            value = self._encode_event(
                {
                    "event_id": f"features|late|{topic}|{p}|{offset}",
                    "stage": "features",
                    "kind": "late_event",
                    "at": now,
                    "worker": self._worker_name,
                    "details": details,
                }
            )
            self._produce(self._events_topic, b"features", value)
        self.counters["late"] += len(late)

    def _persist(self, pf: PartitionFeatures) -> None:
        for key, value in pf.take_changes():
            self._produce(self.state_topic, key, value, pf.partition)

    def _caught_up(self, p: int) -> Callable[[str], bool]:
        """Whether a topic of partition ``p`` has been read up to its end of log."""
        consumer = self._consumer
        assert consumer is not None

        def check(kind: str) -> bool:
            topic = self._topic_of_kind[kind]
            try:
                _, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
            except KafkaException:
                return False
            if hi is None or hi < 0:
                return False
            last = self._seen.get((topic, p))
            # +2: a transactional producer leaves a commit marker after its last record
            return hi == 0 or (last is not None and last + 2 >= hi)

        return check

    def _release(self, ps: Iterable[int], now: float) -> None:
        """Feed each partition's aligned records to its engine; emit, report, persist."""
        out: list[Output] = []
        late: list[tuple[str, int, int, dict[str, Any]]] = []
        for p in sorted(ps):
            pf = self.parts[p]
            released = 0
            for kind, offset, rec in pf.inputs.release(now, self._caught_up(p)):
                out += pf.process(kind, rec)
                released += 1
                for item in pf.engine.drain_late():
                    late.append((self._topic_of_kind[kind], p, offset, item))
            if released:
                pf.queue_dirty = True
                self.counters["records"] += released
        self._emit(out)
        if late:
            self._report_late(late)
        for p in sorted(ps):
            self._persist(self.parts[p])

    def _take(self, msgs: list[Message], now: float) -> None:
        touched: set[int] = set()
        seen, offsets, parts, topics = self._seen, self._offsets, self.parts, self._topics
        kind_of, decode = self._kind_of, self._decode
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                continue  # transport errors: librdkafka reconnects by itself
            topic, p, offset = msg.topic(), msg.partition(), msg.offset()
            seen[(topic, p)] = offset
            offsets[(topic, p)] = offset + 1
            pf = parts.get(p)
            if pf is None:  # assigned without a restore (cannot happen): restore it now
                self.assigned.add(p)
                self._restore({p})
                pf = parts[p]
            topic_kind = topics[topic]
            if offset < pf.pos.get(topic_kind, 0):
                self.counters["replayed"] += 1  # already in the restored state
                continue
            pf.pos[topic_kind] = offset + 1
            touched.add(p)
            value: bytes = msg.value()
            kind = kind_of.get(value[2:10]) if value else None
            if kind is None:
                self.counters["unknown_schema"] += 1
                continue
            pf.inputs.put(kind, offset, value, decode(value), now)
        for p in touched:
            self._last_input[p] = now
            parts[p].queue_dirty = True
        if touched:
            self._release(touched, now)

    def _tick(self, now: float) -> None:
        """Queued records whose other topics went quiet, and idle partitions' tails."""
        waiting = [p for p, pf in self.parts.items() if pf.inputs.size]
        if waiting:
            self._release(waiting, now)
        for p in sorted(self.parts):
            pf = self.parts[p]
            idle = now - self._last_input.get(p, now) >= self._idle_s
            if idle and not pf.inputs.size and pf.pending():
                self.counters["idle_flushes"] += 1
                self._emit(pf.flush_all())
                self._persist(pf)

    def run(self, stop: threading.Event) -> None:
        """Consume, compute and commit until ``stop`` is set; then commit and leave."""
        self.start()
        consumer = self._consumer
        assert consumer is not None
        next_tick = time.monotonic() + TICK_SECONDS
        last_log = time.monotonic()
        threading.Thread(target=self._watch, args=(stop,), daemon=True).start()
        try:
            while not stop.is_set():
                self.doing = "consuming"
                msgs = consumer.consume(BATCH_MAX, timeout=BATCH_WITHIN)
                now = time.monotonic()
                self.beat = now
                if msgs:
                    self.doing = f"processing {len(msgs)} records"
                    self._take(msgs, now)
                if now >= next_tick:
                    next_tick = now + TICK_SECONDS
                    self.doing = "flushing idle partitions"
                    self._tick(now)
                self.doing = "committing"
                self._commit()
                if now - last_log >= 30:
                    last_log = now
                    log.info("features: %s", dict(self.counters))
        finally:
            self.close()

    def _watch(self, stop: threading.Event) -> None:
        """Exit the process when the loop is stuck (a call no timeout covers)."""
        while not stop.wait(5.0):
            idle = time.monotonic() - self.beat
            if idle > STALL_EXIT_SECONDS:
                log.critical(
                    "features: the worker loop has not turned for %.0f s (%s); exiting to"
                    " restart from the committed state", idle, self.doing,
                )  # fmt: skip
                faulthandler.dump_traceback(all_threads=True)  # where it is stuck, in the log
                logging.shutdown()
                os._exit(EX_SOFTWARE)

    def close(self) -> None:
        if self._consumer is not None:
            if self._in_txn and self._producer is not None:
                try:  # the broker aborts it anyway when the transaction times out
                    self._producer.abort_transaction(10)
                except KafkaException as exc:  # must not hide the error that got us here
                    log.warning("features: abort on close failed: %s", exc)
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None


def describe(settings: Settings) -> dict[str, Any]:
    """What the worker consumes, writes and keeps, for ``oddsflow topology``."""
    return {
        "group": features_group(settings),
        "inputs": input_topics(settings),
        "outputs": output_topics(settings),
        "tables": [{"name": STATE_TABLE, "changelog": state_topic(settings)}],
    }
