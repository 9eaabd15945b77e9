"""The generic Postgres sink connector: any catalog topic into its zone's table, exactly once.

Why not Kafka Connect's JDBC sink: it writes row by row and is at-least-once. Here each batch is
written with binary COPY into a temporary table and merged with ``INSERT … ON CONFLICT`` on the
row's natural key, and the consumed offsets are upserted into ``operational.sink_offsets`` in the
SAME transaction. On (re)assignment the consumer seeks to those stored offsets, so a crash at any
moment neither loses nor doubles a row; the natural key makes replays insert nothing twice.
Kafka's own committed offsets are updated after the database commit, for lag monitoring only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import Consumer, Message, TopicPartition

from oddsflow.kafka_config import consumer_config
from oddsflow.settings import Settings
from oddsflow.topics import CATALOG, TopicSpec, topic_name
from schemas.codec import DecodeError, default_codec
from sinks.mapping import TableMapping, mapping_for

log = logging.getLogger("oddsflow.sink")

DEFAULT_GROUP = "oddsflow-sink"
_RETRYABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncio.TimeoutError,
)


@dataclass
class SinkStats:
    consumed: int = 0
    inserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    existing: int = 0  # rows whose natural key was already there (replays, redeliveries)
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    last_message_at: float = 0.0


@dataclass
class _Batch:
    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    dead: list[tuple] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


class SinkConnector:
    """Consumes catalog topics and writes each into its table; run one or many per group."""

    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str] | None = None,
        group: str = DEFAULT_GROUP,
        batch_size: int | None = None,
        batch_timeout: float = 0.25,
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
        self.batch_size = batch_size or max(settings.pipeline.batch_size, 1000) * 5
        self.batch_timeout = batch_timeout
        self.stats = SinkStats()
        self.codec = default_codec()
        ops = settings.pipeline.zones.operational
        self._offsets_table = f"{ops}.sink_offsets"
        self._dead_table = f"{ops}.dead_letters"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: asyncpg.Pool | None = None
        self._consumer: Consumer | None = None
        self._key_index = {t: m.key_index() for t, m in self.mappings.items()}

    # -- Kafka side -------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Seek to the offsets stored with the rows (runs in the consume thread)."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._stored_offsets(partitions), self._loop)
        stored = fut.result(timeout=120)
        for tp in partitions:
            off = stored.get((tp.topic, tp.partition))
            tp.offset = off if off is not None else -2  # OFFSET_BEGINNING
        consumer.incremental_assign(partitions)
        log.info("assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)

    async def _stored_offsets(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        rows = await self._with_retry(
            lambda conn: conn.fetch(
                f"SELECT topic, kafka_partition, next_offset FROM {self._offsets_table}"
                " WHERE consumer_group = $1 AND topic = ANY($2::text[])",
                self.group,
                sorted({tp.topic for tp in partitions}),
            )
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
            except _RETRYABLE as exc:
                self.stats.retries += 1
                log.warning("database unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write(self, batch: _Batch) -> None:
        async def tx(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                for topic, rows in batch.rows.items():
                    await self._merge(conn, self.mappings[topic], rows, batch)
                if batch.dead:
                    await self._insert_dead(conn, batch.dead)
                await conn.executemany(
                    f"INSERT INTO {self._offsets_table}"
                    " (consumer_group, topic, kafka_partition, next_offset) VALUES ($1,$2,$3,$4)"
                    " ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE"
                    " SET next_offset = GREATEST(sink_offsets.next_offset, EXCLUDED.next_offset),"
                    " updated_at = now()",
                    [(self.group, t, p, o) for (t, p), o in batch.next_offsets.items()],
                )

        await self._with_retry(tx)

    async def _merge(
        self, conn: asyncpg.Connection, m: TableMapping, rows: list[tuple], batch: _Batch
    ) -> None:
        tmp = "tmp_" + m.qualified_table.replace(".", "__")
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {m.qualified_table} INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
        if m.spec.upsert:
            # One row per key in a batch: the last delivered wins, as it would row by row.
            idx = self._key_index[m.topic]
            rows = list({tuple(r[i] for i in idx): r for r in rows}.values())
        cols = ", ".join(m.columns)
        keys = ", ".join(m.spec.key_columns)
        if m.spec.upsert:
            sets = ", ".join(
                f"{c} = EXCLUDED.{c}" for c in m.columns if c not in m.spec.key_columns
            )
            conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}, loaded_at = now()"
        else:
            conflict = f"ON CONFLICT ({keys}) DO NOTHING"
        merge_sql = f"INSERT INTO {m.qualified_table} ({cols}) SELECT {cols} FROM {tmp} {conflict}"
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(tmp, records=rows, columns=list(m.columns))
                status = await conn.execute(merge_sql)
            inserted = int(status.split()[-1])
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            log.warning("%s rejected a batch (%s); isolating the bad rows", m.qualified_table, exc)
            inserted = await self._merge_row_by_row(conn, m, rows, conflict, batch)
        self.stats.inserted[m.qualified_table] += inserted
        self.stats.existing += len(rows) - inserted

    async def _merge_row_by_row(
        self,
        conn: asyncpg.Connection,
        m: TableMapping,
        rows: list[tuple],
        conflict: str,
        batch: _Batch,
    ) -> int:
        cols = ", ".join(m.columns)
        params = ", ".join(f"${i + 1}" for i in range(len(m.columns)))
        sql = f"INSERT INTO {m.qualified_table} ({cols}) VALUES ({params}) {conflict}"
        inserted = 0
        for row in rows:
            try:
                async with conn.transaction():
                    status = await conn.execute(sql, *row)
                inserted += int(status.split()[-1])
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                topic, partition, offset = row[-3:]
                await self._insert_dead(
                    conn,
                    [
                        self._dead_row(
                            topic,
                            partition,
                            offset,
                            None,
                            b"",
                            "db_rejected",
                            f"{m.qualified_table} refused the row: {exc}",
                        )
                    ],
                )
                self.stats.dead_lettered += 1
        return inserted

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
        batch = _Batch()
        decode = self.codec.decode
        for msg in messages:
            if msg.error():
                log.warning("consumer error: %s", msg.error())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            m = self.mappings[topic]
            value = msg.value() or b""
            try:
                record = decode(value, reader=m.spec.schema)
                row = m.row(record, topic, partition, offset)
            except DecodeError as exc:
                batch.dead.append(
                    self._dead_row(
                        topic, partition, offset, msg.key(), value, exc.reason, exc.message
                    )
                )
                self.stats.dead_lettered += 1
            except (KeyError, TypeError, ValueError) as exc:
                batch.dead.append(
                    self._dead_row(
                        topic,
                        partition,
                        offset,
                        msg.key(),
                        value,
                        "unmappable",
                        f"record does not fit {m.qualified_table}: {exc!r}",
                    )
                )
                self.stats.dead_lettered += 1
            else:
                batch.rows[topic].append(row)
            batch.next_offsets[(topic, partition)] = offset + 1
        return batch

    async def run(self, stop: asyncio.Event, idle_exit: float | None = None) -> SinkStats:
        """Sink until ``stop`` is set (or, with ``idle_exit``, after that many idle seconds)."""
        self._loop = asyncio.get_running_loop()
        self._pool = await asyncpg.create_pool(
            self.settings.postgres.dsn, min_size=1, max_size=2, command_timeout=120
        )
        consumer = Consumer(
            consumer_config(self.settings, self.group, **{"max.poll.interval.ms": 600_000})
        )
        self._consumer = consumer
        consumer.subscribe(
            list(self.mappings),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                messages = await self._loop.run_in_executor(
                    None, consumer.consume, self.batch_size, self.batch_timeout
                )
                if not messages:
                    if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                        break
                    continue
                idle_since = time.monotonic()
                batch = self._to_batch(messages)
                await self._write(batch)
                self.stats.consumed += len(messages)
                self.stats.batches += 1
                self.stats.last_message_at = time.time()
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
                    asynchronous=True,
                )
        finally:
            await self._loop.run_in_executor(None, consumer.close)
            await self._pool.close()
        return self.stats
