"""The generic Postgres sink connector: any catalog topic into its zone's table, exactly once.

Why not Kafka Connect's JDBC sink: it writes row by row and is at-least-once. Here each batch is
written with binary COPY into a temporary table and merged with ``INSERT … ON CONFLICT`` on the
row's natural key, and the consumed offsets are upserted into ``operational.sink_offsets`` in the
SAME transaction. That transaction first locks the batch's partitions in ``sink_offsets`` and drops
every record below the stored position (a fence): a zombie worker after a rebalance, a retried
commit whose acknowledgement was lost, or a start from the wrong offset can never write a record
twice, and insert-once tables are protected by their natural key as well (replays into a fresh
consumer group insert nothing twice). On (re)assignment the consumer seeks to the stored offsets,
so a crash at any moment neither loses nor doubles a row. Kafka's committed offsets are updated
after the database commit, for lag monitoring only.

Backpressure: one batch is written while the next is fetched and decoded; if a write is slow (the
database is down or restarting) the consumer pauses its partitions and keeps polling, so it
buffers at most what librdkafka had already fetched and keeps its group membership for as long as
the outage lasts, then resumes by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import asyncpg
from asyncpg.exceptions import _base as pg_base
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import CATALOG, TopicSpec, topic_name
from schemas.codec import DecodeError, default_codec
from sinks.mapping import TableMapping, mapping_for

log = logging.getLogger("oddsflow.sink")

DEFAULT_GROUP = "oddsflow-sink"

# The database (or the network to it) is unavailable: retry, keeping our place.
_RETRYABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    pg_base.InterfaceError,  # connection closed under us
)
# The database refuses these rows: isolate them into dead letters, write the rest.
_REJECTED: tuple[type[BaseException], ...] = (
    asyncpg.DataError,  # server side: bad value, NUL byte, out of range
    pg_base.DataError,  # client side: asyncpg cannot encode the value
    asyncpg.IntegrityConstraintViolationError,  # CHECK, NOT NULL, foreign key
    asyncpg.ProgramLimitExceededError,  # e.g. an index row too large
)


def is_retryable(exc: BaseException) -> bool:
    """An outage, not a bad row: asyncpg's client-side DataError is an InterfaceError too."""
    return isinstance(exc, _RETRYABLE) and not isinstance(exc, _REJECTED)


class _Stopped(Exception):
    """Asked to stop while a write was waiting for the database."""


@dataclass
class SinkStats:
    consumed: int = 0
    inserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    existing: int = 0  # rows whose natural key was already there (replays, redeliveries)
    fenced: int = 0  # records below the stored position: already written, dropped
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    pauses: int = 0  # times the consumer paused because the database fell behind
    assignments: int = 0  # partitions assigned / lost, for proving membership was kept
    lost: int = 0
    max_buffered: int = 0  # most messages held in memory at once (bounded by design)
    last_message_at: float = 0.0


@dataclass
class _Batch:
    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    messages: list[Message] = field(default_factory=list)
    dead: list[tuple] = field(default_factory=list)
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class _Outcome:
    """What one committed transaction did (counted only once it committed)."""

    inserted: dict[str, int] = field(default_factory=dict)
    existing: int = 0
    fenced: int = 0
    dead: int = 0
    retracted: int = 0  # rows deleted because a late record withdrew them


class SinkConnector:
    """Consumes catalog topics and writes each into its table; run one or many per group."""

    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str] | None = None,
        group: str = DEFAULT_GROUP,
        batch_size: int | None = None,
        batch_timeout: float = 0.1,
        pause_after: float = 1.0,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 6_000,
    ) -> None:
        self.settings = settings
        wanted = set(topics) if topics else None
        specs: list[TopicSpec] = [s for s in CATALOG if wanted is None or s.name in wanted]
        if wanted and len(specs) != len(wanted):
            unknown = wanted - {s.name for s in specs}
            raise SystemExit(f"oddsflow: unknown topics for the sink: {sorted(unknown)}")
        self.mappings: dict[str, TableMapping] = {
            topic_name(settings, s.name): mapping_for(settings, s) for s in specs
        }
        self.group = settings.kafka.topic_prefix + group
        self.batch_size = batch_size or settings.pipeline.batch_size * 20
        self.batch_timeout = batch_timeout
        self.pause_after = pause_after
        self.stats = SinkStats()
        self.codec = default_codec()
        ops = settings.pipeline.zones.operational
        self._offsets_table = f"{ops}.sink_offsets"
        self._dead_table = f"{ops}.dead_letters"
        self._consumer_extra: dict[str, Any] = {
            # A SIGKILLed worker's partitions move on after this, not after the 45 s default.
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(session_timeout_ms // 6, 500),
            "max.poll.interval.ms": max(max_poll_interval_ms, session_timeout_ms),
            # Bound what librdkafka prefetches: with pause() this bounds the sink's memory.
            "queued.max.messages.kbytes": 16_384,
            "on_commit": self._on_commit,  # which lag-only commits the broker took
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: asyncpg.Pool | None = None
        self._consumer: Consumer | None = None
        self._paused = False
        #: Offsets the broker acknowledged as committed (lag only): an idle turn re-sends a
        #: position until it is acknowledged, so a commit lost in a broker restart is retried.
        self._kafka_committed: dict[tuple[str, int], int] = {}
        self._stop: asyncio.Event | None = None
        self._key_index = {t: m.key_index() for t, m in self.mappings.items()}
        self._row_makers = {t: m.row_maker() for t, m in self.mappings.items()}
        self._schemas = {t: m.spec.schema for t, m in self.mappings.items()}
        self._optimistic: dict[str, bool] = {}

    # -- Kafka side -------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Seek to the offsets stored with the rows (runs in the consume thread).

        Never waits for an outage: without the stored offsets it starts from the beginning, and
        the fence in the write transaction drops what was already written.
        """
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._stored_offsets(partitions), self._loop)
        try:
            stored = fut.result(timeout=15)
        except Exception as exc:
            fut.cancel()
            log.warning("stored offsets unavailable (%s); starting from the beginning", exc)
            stored = {}
        for tp in partitions:
            off = stored.get((tp.topic, tp.partition))
            tp.offset = off if off is not None and off >= 0 else OFFSET_BEGINNING
        consumer.incremental_assign(partitions)
        if self._paused:
            consumer.pause(partitions)
        self.stats.assignments += len(partitions)
        log.info("assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.lost += len(partitions)
        log.warning("lost %d partitions (group membership expired)", len(partitions))
        consumer.incremental_unassign(partitions)

    async def _stored_offsets(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        assert self._pool is not None
        async with asyncio.timeout(10):
            rows = await self._pool.fetch(
                f"SELECT topic, kafka_partition, next_offset FROM {self._offsets_table}"
                " WHERE consumer_group = $1 AND topic = ANY($2::text[])",
                self.group,
                sorted({tp.topic for tp in partitions}),
            )
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    # -- Postgres side ----------------------------------------------------------------------

    async def _with_retry(self, op: Any) -> Any:
        """Run ``op(conn)``; through outages retry with capped backoff, keeping our place."""
        delay = 0.2
        while True:
            try:
                assert self._pool is not None
                async with self._pool.acquire() as conn:
                    return await op(conn)
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                self.stats.retries += 1
                log.warning("database unavailable (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write(self, batch: _Batch) -> _Outcome:
        async def tx(conn: asyncpg.Connection) -> _Outcome:
            out = _Outcome()
            async with conn.transaction():
                stored = await self._lock_positions(conn, batch)
                for topic, rows in batch.rows.items():
                    rows = self._fence(rows, stored, batch, out)
                    if rows:
                        await self._merge(conn, self.mappings[topic], rows, batch, out)
                dead = self._fence(batch.dead, stored, batch, out)
                if dead:
                    await self._insert_dead(conn, dead)
                    out.dead += len(dead)
                parts = sorted(batch.next_offsets)
                await conn.execute(
                    f"INSERT INTO {self._offsets_table} AS o"
                    " (consumer_group, topic, kafka_partition, next_offset)"
                    " SELECT $1, t, p, n FROM unnest($2::text[], $3::int[], $4::bigint[])"
                    " AS u(t, p, n)"
                    " ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE"
                    " SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset),"
                    " updated_at = now()",
                    self.group,
                    [t for t, _ in parts],
                    [p for _, p in parts],
                    [batch.next_offsets[tp] for tp in parts],
                )
            return out

        out = await self._with_retry(tx)
        self._count(batch, out)  # committed: visible in the stats at once
        return out

    async def _lock_positions(
        self, conn: asyncpg.Connection, batch: _Batch
    ) -> dict[tuple[str, int], int]:
        """Lock the batch's partitions' positions (in a fixed order) and read them."""
        parts = sorted(batch.next_offsets)
        topics, nums = [t for t, _ in parts], [p for _, p in parts]
        await conn.execute(
            f"INSERT INTO {self._offsets_table} (consumer_group, topic, kafka_partition,"
            " next_offset) SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS u(t, p)"
            " ORDER BY t, p ON CONFLICT DO NOTHING",
            self.group,
            topics,
            nums,
        )
        rows = await conn.fetch(
            f"SELECT topic, kafka_partition, next_offset FROM {self._offsets_table}"
            " WHERE consumer_group = $1 AND (topic, kafka_partition) IN"
            " (SELECT * FROM unnest($2::text[], $3::int[]))"
            " ORDER BY topic, kafka_partition FOR UPDATE",
            self.group,
            topics,
            nums,
        )
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    @staticmethod
    def _fence(
        rows: list[tuple], stored: dict[tuple[str, int], int], batch: _Batch, out: _Outcome
    ) -> list[tuple]:
        """Drop rows below the stored position (lineage is each row's last three values)."""
        behind = {tp for tp, first in batch.first_offsets.items() if stored.get(tp, 0) > first}
        if not behind or not rows:
            return rows
        kept = [r for r in rows if r[-1] >= stored.get((r[-3], r[-2]), 0)]
        out.fenced += len(rows) - len(kept)
        return kept

    async def _merge(
        self,
        conn: asyncpg.Connection,
        m: TableMapping,
        rows: list[tuple],
        batch: _Batch,
        out: _Outcome,
    ) -> None:
        tmp = "tmp_" + m.qualified_table.replace(".", "__")
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {m.qualified_table} INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
        upsert = m.spec.upsert or m.spec.corrected
        newest_wins = upsert and "event_time" in m.columns
        order_cols = [c for c in ("event_time", "source_event_id") if c in m.columns]
        order_cols = order_cols if newest_wins else []
        if upsert:
            # One row per key in a batch: the last delivered wins, as it would row by row; with
            # an event time, the newest (a record re-sent after a crash must not roll a game's
            # state back: the chaos suite caught one doing so).
            # Ties on event time are broken by the order columns, not by arrival, so the row is
            # the same whatever order redeliveries and partitions interleave in.
            key_of = itemgetter(*self._key_index[m.topic])
            if order_cols:
                order_of = itemgetter(*[m.columns.index(c) for c in order_cols])
                latest: dict[Any, tuple[Any, ...]] = {}
                for r in rows:
                    k = key_of(r)
                    kept = latest.get(k)
                    if kept is None or order_of(r) >= order_of(kept):
                        latest[k] = r
            else:
                latest = {key_of(r): r for r in rows}
            if len(latest) < len(rows):
                rows = list(latest.values())
        if m.spec.corrected:
            rows = await self._delete_retracted(conn, tmp, m, rows, out)
            if not rows:
                return
        cols = ", ".join(m.columns)
        keys = ", ".join(m.spec.key_columns)
        if upsert:
            sets = ", ".join(
                f"{c} = EXCLUDED.{c}" for c in m.columns if c not in m.spec.key_columns
            )
            conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}, loaded_at = now()"
            if newest_wins:
                mine = ", ".join(f"EXCLUDED.{c}" for c in order_cols)
                theirs = ", ".join(f"{m.qualified_table}.{c}" for c in order_cols)
                conflict += f" WHERE ({mine}) >= ({theirs})"
        else:
            conflict = f"ON CONFLICT ({keys}) DO NOTHING"
        merge_sql = f"INSERT INTO {m.qualified_table} ({cols}) SELECT {cols} FROM {tmp} {conflict}"
        if not m.spec.upsert and self._optimistic.get(m.topic, True):
            # Fast path: COPY straight into the table (no temp table, no speculative inserts).
            # A key already there (replay, redelivery, a correction) or a refused row aborts it,
            # and the merge below does the batch instead; after a key conflict the table stays
            # on the merge path until a batch meets no existing key.
            schema, _, table = m.qualified_table.partition(".")
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        table, schema_name=schema, records=rows, columns=list(m.columns)
                    )
            except asyncpg.UniqueViolationError:
                self._optimistic[m.topic] = False
            except _REJECTED:
                pass
            else:
                out.inserted[m.qualified_table] = out.inserted.get(m.qualified_table, 0) + len(rows)
                return
        inserted, rejected = await self._merge_isolating(conn, tmp, m, merge_sql, rows)
        if inserted + len(rejected) == len(rows):
            self._optimistic[m.topic] = True
        if rejected:
            by_lineage = {(g.topic(), g.partition(), g.offset()): g for g in batch.messages}
            dead = []
            for row, exc in rejected:
                topic, partition, offset = row[-3:]
                msg = by_lineage.get((topic, partition, offset))
                reason = f"{m.qualified_table} refused the row: {type(exc).__name__}: {exc}"
                sqlstate = getattr(exc, "sqlstate", None)
                if sqlstate:
                    reason += f" (SQLSTATE {sqlstate})"
                dead.append(
                    self._dead_row(
                        topic,
                        partition,
                        offset,
                        msg.key() if msg is not None else None,
                        (msg.value() or b"") if msg is not None else b"",
                        "db_rejected",
                        reason,
                    )
                )
            await self._insert_dead(conn, dead)
            out.dead += len(dead)
        out.inserted[m.qualified_table] = out.inserted.get(m.qualified_table, 0) + inserted
        out.existing += len(rows) - inserted - len(rejected)

    async def _delete_retracted(
        self, conn: asyncpg.Connection, tmp: str, m: TableMapping, rows: list[tuple], out: _Outcome
    ) -> list[tuple]:
        """Delete the rows that retractions withdraw; return the batch's other rows."""
        i = m.columns.index("retracted")
        gone = [r for r in rows if r[i]]
        if not gone:
            return rows
        match = " AND ".join(f"{m.qualified_table}.{k} = {tmp}.{k}" for k in m.spec.key_columns)
        async with conn.transaction():
            await conn.copy_records_to_table(tmp, records=gone, columns=list(m.columns))
            delete = f"DELETE FROM {m.qualified_table} USING {tmp} WHERE {match}"
            status = await conn.execute(delete)
            await conn.execute(f"DELETE FROM {tmp}")
        out.retracted += int(status.split()[-1])
        return [r for r in rows if not r[i]]

    async def _merge_isolating(
        self,
        conn: asyncpg.Connection,
        tmp: str,
        m: TableMapping,
        merge_sql: str,
        rows: list[tuple],
    ) -> tuple[int, list[tuple[tuple, BaseException]]]:
        """COPY + merge under a savepoint; if the database refuses, bisect to the bad rows.

        k bad rows in n cost O(k log n) round trips, not n, and every good row is written.
        """
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(tmp, records=rows, columns=list(m.columns))
                status = await conn.execute(merge_sql)
            return int(status.split()[-1]), []
        except _REJECTED as exc:
            if len(rows) == 1:
                log.warning("%s refused a row: %s", m.qualified_table, exc)
                return 0, [(rows[0], exc)]
            mid = len(rows) // 2
            a_ins, a_bad = await self._merge_isolating(conn, tmp, m, merge_sql, rows[:mid])
            b_ins, b_bad = await self._merge_isolating(conn, tmp, m, merge_sql, rows[mid:])
            return a_ins + b_ins, a_bad + b_bad

    def _dead_row(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        error_class: str,
        reason: str,
    ) -> tuple:
        now = datetime.now(UTC)
        return (
            "sink",
            topic,
            partition,
            offset,
            key,
            value,
            error_class,
            reason,
            now,
            topic,
            partition,
            offset,
        )

    async def _insert_dead(self, conn: asyncpg.Connection, dead: list[tuple]) -> None:
        await conn.executemany(
            f"INSERT INTO {self._dead_table} (stage, origin_topic, origin_partition,"
            " origin_offset, key, original, error_class, reason, failed_at, kafka_topic,"
            " kafka_partition, kafka_offset) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
            " ON CONFLICT DO NOTHING",
            dead,
        )

    # -- the loop ---------------------------------------------------------------------------

    def _to_batch(self, messages: list[Message]) -> _Batch:
        batch = _Batch(messages=messages)
        decode = self.codec.decode
        makers, schemas, rows = self._row_makers, self._schemas, batch.rows
        first, nxt = batch.first_offsets, batch.next_offsets
        for msg in messages:
            if msg.error():
                log.warning("consumer error: %s", msg.error())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            tp = (topic, partition)
            if tp not in first:
                first[tp] = offset
            nxt[tp] = offset + 1
            value = msg.value() or b""
            try:
                row = makers[topic](decode(value, reader=schemas[topic]), topic, partition, offset)
            except DecodeError as exc:
                batch.dead.append(
                    self._dead_row(
                        topic, partition, offset, msg.key(), value, exc.reason, exc.message
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                batch.dead.append(
                    self._dead_row(
                        topic,
                        partition,
                        offset,
                        msg.key(),
                        value,
                        "unmappable",
                        f"record does not fit {self.mappings[topic].qualified_table}: {exc!r}",
                    )
                )
            else:
                rows[topic].append(row)
        return batch

    async def _poll_while(
        self, batch: _Batch, task: asyncio.Task[_Outcome], carry: list[Message], held: int
    ) -> _Outcome:
        """Wait for a write; if it is slow, pause the partitions and keep polling.

        Polling keeps the group membership (max.poll.interval.ms) and serves rebalances; what a
        paused consumer still returns (already fetched) is carried into the next batch.
        """
        assert self._consumer is not None and self._loop is not None
        consumer = self._consumer
        done, _ = await asyncio.wait({task}, timeout=self.pause_after)
        if done:
            return task.result()
        consumer.pause(consumer.assignment())
        self._paused = True
        self.stats.pauses += 1
        log.warning("database is behind: paused %d partitions", len(consumer.assignment()))
        try:
            while not task.done():
                if self._stop is not None and self._stop.is_set():
                    # Stopping during an outage: drop the uncommitted batch; it is re-read
                    # from the stored offsets by whoever owns its partitions next.
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    raise _Stopped
                msg = await self._loop.run_in_executor(None, consumer.poll, 0.5)
                if msg is not None:
                    carry.append(msg)
                    buffered = len(batch.messages) + held + len(carry)
                    self.stats.max_buffered = max(self.stats.max_buffered, buffered)
            return task.result()
        finally:
            self._paused = False
            consumer.resume(consumer.assignment())
            log.info("database caught up: resumed")

    def _count(self, batch: _Batch, out: _Outcome) -> None:
        s = self.stats
        s.consumed += len(batch.messages)
        for table, n in out.inserted.items():
            s.inserted[table] += n
        s.existing += out.existing
        s.fenced += out.fenced
        s.dead_lettered += out.dead
        s.batches += 1
        s.last_message_at = time.time()

    async def run(
        self, stop: asyncio.Event, idle_exit: float | None = None, purge: bool = False
    ) -> SinkStats:
        """Sink until ``stop`` is set (or, with ``idle_exit``, after that many idle seconds).

        With ``purge``, also apply the zones' retention every ``purge_interval_minutes``.
        """
        self._loop = loop = asyncio.get_running_loop()
        self._stop = stop
        # min_size=0: a worker started while the database is down waits for it, not dies.
        self._pool = await asyncpg.create_pool(
            self.settings.postgres.dsn, min_size=0, max_size=2, command_timeout=120
        )
        try:  # warm one connection; if the database is down, the writes wait for it
            async with asyncio.timeout(5):
                await self._pool.execute("SELECT 1")
        except Exception as exc:
            if not is_retryable(exc):
                raise
        consumer = Consumer(consumer_config(self.settings, self.group, **self._consumer_extra))
        self._consumer = consumer
        consumer.subscribe(
            list(self.mappings),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        purger = None
        if purge:
            from sinks.retention import purge_periodically

            purger = asyncio.create_task(purge_periodically(self.settings, stop))
        idle_since = time.monotonic()
        carry: list[Message] = []
        pending: tuple[_Batch, asyncio.Task[_Outcome]] | None = None
        try:
            while not stop.is_set():
                # Fetch and decode the next batch while the previous one is being written.
                want = self.batch_size - len(carry)
                fetched = (
                    await loop.run_in_executor(None, consumer.consume, want, self.batch_timeout)
                    if want > 0
                    else []
                )
                messages, carry = carry + fetched, []
                batch = self._to_batch(messages) if messages else None
                if pending is not None:
                    self.stats.max_buffered = max(
                        self.stats.max_buffered, len(pending[0].messages) + len(messages)
                    )
                    await self._finish(*pending, carry, len(messages))
                    pending = None
                if batch is None:
                    self._commit_idle_positions()
                    if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                        break
                    continue
                idle_since = time.monotonic()
                pending = (batch, asyncio.create_task(self._write(batch)))
            if pending is not None:
                await self._finish(*pending, carry, 0)
        except _Stopped:
            log.warning("stopped during a database outage; the last batch was not written")
        finally:
            if purger is not None:
                purger.cancel()
                await asyncio.gather(purger, return_exceptions=True)
            if pending is not None and not pending[1].done():
                pending[1].cancel()
                await asyncio.gather(pending[1], return_exceptions=True)
            await loop.run_in_executor(None, consumer.close)
            try:
                await asyncio.wait_for(self._pool.close(), 10)
            except TimeoutError:
                self._pool.terminate()
        return self.stats

    def _commit_idle_positions(self) -> None:
        """With nothing in hand, tell Kafka the consumer's positions (for lag only).

        Every record before a position is written by now, but a position can be past the last
        record's offset + 1: a transactional producer (the features worker) ends each
        transaction with a commit marker, which the consumer skips and never returns. Committing
        only ``last + 1`` would leave the group a lag of 1 per partition for ever.
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            positions = consumer.position(consumer.assignment())
        except Exception:  # no assignment (a rebalance): nothing to say
            return
        done = self._kafka_committed
        ahead = [tp for tp in positions if tp.offset > done.get((tp.topic, tp.partition), -1)]
        if not ahead:
            return
        try:
            consumer.commit(offsets=ahead, asynchronous=True)
        except Exception as exc:
            log.info("kafka offset commit skipped: %s", exc)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Called from consume() with the outcome of a Kafka offset commit."""
        if err is not None:
            return  # the next idle turn (or batch) commits again
        done = self._kafka_committed
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if tp.error is None and tp.offset > done.get(key, -1):
                done[key] = tp.offset

    async def _finish(
        self, batch: _Batch, task: asyncio.Task[_Outcome], carry: list[Message], held: int
    ) -> None:
        """Wait for a batch's transaction, count it, then tell Kafka (for lag only)."""
        assert self._consumer is not None
        await self._poll_while(batch, task, carry, held)
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
                asynchronous=True,
            )
        except Exception as exc:  # no assignment any more, or a rebalance: lag only
            log.info("kafka offset commit skipped: %s", exc)
