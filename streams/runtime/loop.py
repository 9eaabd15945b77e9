"""The transaction loop: consume a batch, let the task process it, commit it all at once.

Each turn is one Kafka transaction of librdkafka's producer holding the turn's outputs, the state
changes the task wrote to its changelogs and the input offsets the task declared done
(``send_offsets_to_transaction``). The broker commits all of it or none; a restarted worker reads
the state back from the changelogs and resumes from the committed offsets, the same point by
construction, so a crash repeats nothing and loses nothing downstream of read_committed readers.

* Latency: a turn starts as soon as one record is there (``poll``), then takes whatever else is
  already fetched (``consume`` without waiting), so a live record is not held for a batch timer.
* Zombies: the transactional id and the static group member id are ``<group>-<host>-<slot>``,
  the slot a file lock under the state folder. A SIGKILLed worker's successor takes the same
  slot, so ``init_transactions`` aborts what the dead one left open at once, and the group hands
  it the same partitions without waiting for the old session to expire.
* Errors: an abortable transaction error aborts and rewinds every partition to its committed
  state in process; anything else exits the process (status 70) for the supervisor to restart.
* Watchdog (``watchdog.py``): a loop that stopped turning, or that turns without an assignment
  while its group forgot it, or makes no progress while its input lags, exits for a restart.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from core.kafka_config import consumer_config, producer_config
from core.settings import Settings
from streams.runtime.changelog import ensure_topic, read_partitions
from streams.runtime.task import Entry, Task
from streams.runtime.watchdog import CALL_TIMEOUT, Watchdog

log = logging.getLogger("oddsflow.runtime")

#: How long a transaction call may keep retrying (a broker restart) before the worker gives up.
TXN_TIMEOUT = 120.0
SLOTS = 64
#: At a clean stop, how long the worker keeps working off its own internal topics.
DRAIN_SECONDS = 4.0


class FatalError(RuntimeError):
    """The worker cannot go on in process: exit and restart from the committed state."""


def claim_slot(folder: Path, group: str) -> tuple[int, IO[bytes]]:
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
    raise FatalError(f"more than {SLOTS} workers of {group} on this host")


class TransactionalLoop:
    """One worker process of a role: ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        task: Task,
        group: str,
        *,
        max_batch: int = 20_000,
        wait: float = 0.1,
        partitions: int | None = None,
    ) -> None:
        self.settings = settings
        self.task = task
        self.group = group
        self.max_batch = max_batch
        self.wait = wait
        self._partitions = partitions
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.instance = ""
        self.assigned: set[int] = set()
        self._held: set[str] = set()  # "topic:partition" of the current assignment
        self.restoring = False
        self.beat = time.monotonic()  # the loop's own heartbeat (readiness, stall watchdog)
        self.doing = "starting"  # what the loop is doing now, for the watchdog's message
        self.last_assigned = time.monotonic()  # when the loop last held an assignment
        self.calling: tuple[str, float] | None = None  # (transactional call under way, since)
        self.stats: Counter[str] = Counter()
        self._seen: dict[tuple[str, int], int] = {}  # last offset consumed per partition
        self._offsets: dict[tuple[str, int], int] = {}  # to commit with the open transaction
        self._highs: dict[tuple[str, int], tuple[float, int]] = {}  # queried end offsets
        self._in_txn = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._slot_lock: IO[bytes] | None = None
        self._inputs: set[str] = set()
        self._changelogs: dict[str, str] = {}
        self.watchdog: Any = None  # set by the watchdog when it starts

    # ------------------------------------------------------------------ set-up

    def start(self) -> None:
        """Create the changelogs, claim a slot, fence the slot's previous owner, subscribe."""
        self._inputs = set(self.task.input_topics())
        self._changelogs = self.task.changelog_topics()
        partitions = self._partitions or self.settings.kafka.partitions
        for topic in self._changelogs.values():
            ensure_topic(self.settings, topic, partitions)
        for topic in self.task.internal_topics():
            ensure_topic(self.settings, topic, partitions, compact=False)
        slot, self._slot_lock = claim_slot(
            self.settings.state_dir / "workers", self.group.replace("/", "_")
        )
        self.instance = f"{self.group}-{socket.gethostname()}-{slot}"
        self._producer = Producer(
            producer_config(
                self.settings,
                partitioner="murmur2_random",  # the Java client's key -> partition
                **{
                    "transactional.id": self.instance,
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
                    "partition.assignment.strategy": "range",  # one partition number, all topics
                    "group.instance.id": self.instance,
                    "session.timeout.ms": 10_000,
                    "heartbeat.interval.ms": 2_000,
                    "fetch.wait.max.ms": self.settings.worker.fetch_max_wait_ms,
                    "max.poll.interval.ms": 300_000,
                },
            )
        )
        self._consumer.subscribe(
            sorted(self._inputs), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )  # fmt: skip
        log.info("%s worker %s subscribed as %s", self.task.name, self.worker_name, self.instance)

    def _failed(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:  # inside a transaction: the commit fails and says so
            log.warning("%s: delivery to %s failed: %s", self.task.name, msg.topic(), err)

    # ------------------------------------------------------------------ assignment and state

    def assignment(self) -> list[str]:
        """The partitions the consumer holds, as ``topic:partition`` (for /ready: noted by the
        rebalance callbacks, never asked of the consumer from another thread, where it can
        wait for a rebalance the loop is busy serving)."""
        return sorted(self._held)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._held |= {f"{tp.topic}:{tp.partition}" for tp in partitions}
        ps = {tp.partition for tp in partitions if tp.topic in self._inputs}
        new = ps - self.assigned
        self.assigned |= ps
        if self.assigned:
            self.last_assigned = time.monotonic()
        self._restore(new)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is open here: a turn commits before the next consume, where revocations are
        # delivered. A revoked partition's state is read back if it returns.
        self._held -= {f"{tp.topic}:{tp.partition}" for tp in partitions}
        ps = {tp.partition for tp in partitions if tp.topic in self._inputs}
        self.assigned -= ps
        for p in ps:
            for topic in self._inputs:
                self._seen.pop((topic, p), None)
        self.task.revoke(ps)

    def _restore(self, ps: set[int]) -> None:
        """Hand the task the committed state of partitions ``ps``."""
        if not ps:
            return
        self.restoring = True
        self.doing = f"restoring partitions {sorted(ps)}"
        t0 = time.monotonic()
        try:
            state = {
                name: read_partitions(
                    self.settings, topic, ps, f"{self.group}-restore", TXN_TIMEOUT, self._pulse
                )
                for name, topic in self._changelogs.items()
            }
            self.task.assign(ps, state)
            entries = sum(len(v) for per in state.values() for v in per.values())
            log.info(
                "%s: partitions %s restored from %d changelog entries in %.1f s",
                self.task.name, sorted(ps), entries, time.monotonic() - t0,
            )  # fmt: skip
        finally:
            self.restoring = False

    def _pulse(self) -> None:
        self.beat = time.monotonic()  # reading state back is progress

    # ------------------------------------------------------------------ the Output of a turn

    def _begin(self) -> None:
        if not self._in_txn:
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_txn = True

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int = -1,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: int = 0,
    ) -> None:
        if not self._in_txn:
            self._begin()
        producer = self._producer
        assert producer is not None
        while True:
            try:
                producer.produce(
                    topic, value, key, partition=partition, headers=headers, timestamp=timestamp
                )
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                producer.poll(0.05)

    def changelog(self, topic: str, partition: int, entries: Iterable[Entry]) -> None:
        for key, value in entries:
            self.produce(topic, value, key, partition)

    def consumed(self, topic: str, partition: int, next_offset: int) -> None:
        self._offsets[(topic, partition)] = next_offset

    def behind(
        self, topic: str, partition: int, slack: int = 0, fresh: bool = False
    ) -> bool | None:
        """Whether records of the partition wait past what was consumed (None: unknown).
        ``fresh``: the end offset from the broker now, not the last fetch's (which predates
        what this worker itself just wrote)."""
        consumer = self._consumer
        assert consumer is not None
        tp = TopicPartition(topic, partition)
        if fresh:
            high = self._broker_high(tp)
        else:
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                return None
            if high is None or high < 0:  # no fetch answered for it yet: ask the broker
                high = self._queried_high(tp)
        if high is None:
            return None
        last = self._seen.get((topic, partition))
        if last is not None:
            position = last + 1
        else:
            [pos] = consumer.position([tp])
            if pos.offset < 0:
                return None if high > 0 else False
            position = pos.offset
        return high > position + slack

    def _queried_high(self, tp: TopicPartition) -> int | None:
        """The partition's end offset from the broker (at most every 2 s per partition): an
        empty partition that no fetch has answered for must not hold others back for long."""
        key = (tp.topic, tp.partition)
        now = time.monotonic()
        cached = self._highs.get(key)
        if cached is not None and now - cached[0] < 2.0:
            return cached[1]
        high = self._broker_high(tp)
        if high is not None:
            self._highs[key] = (now, high)
        return high

    def _broker_high(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as the broker has it now (None: it did not answer)."""
        consumer = self._consumer
        assert consumer is not None
        try:
            _low, high = consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
        except KafkaException:
            return None
        return high

    # ------------------------------------------------------------------ transactions

    def _retrying(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """Call a transactional API, retrying what librdkafka calls retriable (broker away)."""
        deadline = time.monotonic() + TXN_TIMEOUT
        while True:
            self.calling = (what, time.monotonic())
            try:
                return call(*args, CALL_TIMEOUT)
            except KafkaException as exc:
                err = exc.args[0]
                if err.retriable() and time.monotonic() < deadline:
                    log.warning("%s: %s will be retried: %s", self.task.name, what, err)
                    self.beat = time.monotonic()
                    continue
                raise
            finally:
                self.calling = None

    def commit(self) -> None:
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
            log.warning("%s: transaction aborted (%s); rewinding", self.task.name, err)
            self._retrying("abort_transaction", producer.abort_transaction)
            self._in_txn = False
            self._offsets.clear()
            self._rewind()
            return
        self._in_txn = False
        self._offsets.clear()
        self.stats["commits"] += 1

    def _rewind(self) -> None:
        """Forget the in-memory state and re-read it and the input positions as committed."""
        consumer = self._consumer
        assert consumer is not None
        self.stats["rewinds"] += 1
        ps = set(self.assigned)
        self.task.revoke(ps)
        self._seen.clear()
        tps = [TopicPartition(t, p) for t in self._inputs for p in ps]
        for tp in consumer.committed(tps, timeout=60):
            consumer.seek(
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0)
            )
        self._restore(ps)

    # ------------------------------------------------------------------ the loop

    def _take(self) -> list[Message]:
        """The next batch: waits for the first record only, then takes what is fetched."""
        consumer = self._consumer
        assert consumer is not None
        msgs = consumer.consume(self.max_batch, timeout=0)
        if not msgs:
            first = consumer.poll(self.wait)
            if first is None:
                return []
            msgs = [first, *consumer.consume(self.max_batch - 1, timeout=0)]
        good: list[Message] = []
        seen = self._seen
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                continue  # transport errors: librdkafka reconnects by itself
            seen[(msg.topic(), msg.partition())] = msg.offset()
            good.append(msg)
        return good

    def run(self, stop: threading.Event, watch: bool = True) -> None:
        """Consume, process and commit until ``stop`` is set; then drain and leave."""
        self.start()
        if watch:
            Watchdog(self).start(stop)
        last_log = time.monotonic()
        try:
            while not stop.is_set():
                self._turn()
                if self.beat - last_log >= 30:
                    last_log = self.beat
                    log.info("%s: %s", self.task.name, {**self.stats, **self.task.counters()})
            self._stop()
        finally:
            self.close()

    def _turn(self) -> None:
        """One turn: take a batch, let the task process it and tick, commit it all."""
        self.doing = "consuming"
        msgs = self._take()
        now = time.monotonic()
        self.beat = now
        if self.assigned:
            self.last_assigned = now
        if msgs:
            self.doing = f"processing {len(msgs)} records"
            self.stats["records"] += len(msgs)
            self.task.process(msgs, now, self)
        self.doing = "ticking"
        self.task.tick(now, self)
        self.doing = "committing"
        self.commit()

    def _stop(self) -> None:
        """A clean stop: the task writes what waits for a timer, the input topics are paused,
        and the task's internal topics are worked off (within DRAIN_SECONDS), so a stopped
        worker leaves no record between its own steps and its group at lag 0 on them.

        Their end offsets are asked of the broker: the consumer's cached ones come from its
        last fetch, before the flush wrote (the quality deltas of a stop were left unconsumed,
        and the ops page called the stopped group STOP)."""
        self.doing = "stopping"
        self.task.flush(self)
        self.commit()
        consumer = self._consumer
        assert consumer is not None
        internal = set(self.task.internal_topics())
        if not internal or not self.assigned:
            return
        outside = [tp for tp in consumer.assignment() if tp.topic not in internal]
        if outside:
            consumer.pause(outside)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            pending = [
                (t, p)
                for t in internal
                for p in self.assigned
                if self.behind(t, p, 1, fresh=True) is not False
            ]
            if not pending:
                break
            self._turn()
        self.doing = "stopped"

    def close(self) -> None:
        if self._consumer is not None:
            if self._in_txn and self._producer is not None:
                try:  # the broker aborts it anyway when the transaction times out
                    self._producer.abort_transaction(10)
                except KafkaException as exc:  # must not hide the error that got us here
                    log.warning("%s: abort on close failed: %s", self.task.name, exc)
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
