"""Sink throughput into Postgres, side by side with plain row-by-row INSERTs (the JDBC-sink way).

``bench_sink(settings, n)`` pre-produces n encoded ``staging.odds_lines`` records to a fresh
prefixed topic with its own Postgres schemas, then times one in-process connector from start to
the last row committed. The baseline writes the same rows (the first ``baseline_n`` of them, since
row-by-row with autocommit is slow by construction) with one ``INSERT`` per row. Everything the
bench creates is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from confluent_kafka import Producer

from core.admin import admin_client, create_topics
from core.isolation import isolated_settings
from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import BY_NAME, topic_name
from schemas.codec import default_codec
from sinks.connector import SinkConnector
from sinks.mapping import mapping_for
from sinks.migrate import migrate

TOPIC = "staging.odds_lines"
START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)


def odds_line(i: int) -> dict[str, Any]:
    """The i-th of a deterministic set of odds lines, each with its own natural key."""
    game = i % 20  # keys spread over the partitions
    at = START + timedelta(seconds=i)
    price = -110 - (i % 50)
    dec = 1 + 100 / -price
    return {
        "game_id": f"MLB-20260401-STL@PIT-{game}",
        "commence_time": START + timedelta(hours=2),
        "home_team": "PIT",
        "away_team": "STL",
        "book": ("pinnacle", "draftkings", "fanduel")[i % 3],
        "market": "moneyline",
        "side": "home",
        "line": None,
        "price_american": price,
        "price_decimal": dec,
        "implied_prob": 1 / dec,
        "novig_prob": None,
        "event_time": at,
        "ingested_at": at + timedelta(seconds=1),
        "source": "simulator",
        "source_event_id": f"ev-{i}",
    }


def produce_odds_lines(settings: Settings, records: list[dict[str, Any]]) -> int:
    """Publish encoded odds lines keyed by game id; returns how many the broker acknowledged."""
    encode = default_codec().encoder("oddsflow.staging.OddsLine")
    producer = Producer(producer_config(settings))
    acked = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    topic = topic_name(settings, TOPIC)
    for rec in records:
        while True:
            try:
                producer.produce(
                    topic, encode(rec), rec["game_id"].encode(), on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    return acked


def _bench_settings(settings: Settings) -> Settings:
    return isolated_settings(settings, kind="bench")


async def _row_by_row(s: Settings, rows: list[tuple]) -> float:
    m = mapping_for(s, BY_NAME[TOPIC])
    cols = ", ".join(m.columns)
    params = ", ".join(f"${i + 1}" for i in range(len(m.columns)))
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        table = f"{s.pipeline.zones.staging}.odds_lines_baseline"
        await conn.execute(f"CREATE TABLE {table} (LIKE {m.qualified_table} INCLUDING ALL)")
        sql = f"INSERT INTO {table} ({cols}) VALUES ({params})"
        t0 = time.perf_counter()
        for row in rows:
            await conn.execute(sql, *row)
        elapsed = time.perf_counter() - t0
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == len(rows)
        return elapsed
    finally:
        await conn.close()


async def _cleanup(s: Settings) -> None:
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        for schema in s.pipeline.zones.model_dump().values():
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()
    prefix = s.kafka.topic_prefix
    admin = admin_client(s)
    ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if ours:
        for fut in admin.delete_topics(ours, operation_timeout=30).values():
            fut.result()


async def bench_sink_async(
    settings: Settings, n: int = 50_000, baseline_n: int | None = None
) -> dict[str, Any]:
    """See :func:`bench_sink`."""
    s = _bench_settings(settings)
    baseline_n = min(n, 5_000) if baseline_n is None else min(baseline_n, n)
    records = [odds_line(i) for i in range(n)]
    try:
        await asyncio.to_thread(create_topics, s, (BY_NAME[TOPIC],))
        await migrate(s)
        acked = await asyncio.to_thread(produce_odds_lines, s, records)
        if acked != n:
            raise RuntimeError(f"the broker acknowledged {acked} of {n} records")

        table = f"{s.pipeline.zones.staging}.odds_lines"
        sink = SinkConnector(s, topics=[TOPIC])
        stop = asyncio.Event()
        t0 = time.perf_counter()
        task = asyncio.create_task(sink.run(stop))
        while sink.stats.inserted.get(table, 0) < n and not task.done():
            await asyncio.sleep(0.02)
        sink_s = time.perf_counter() - t0
        stop.set()
        await task
        conn = await asyncpg.connect(s.postgres.dsn)
        try:
            stored = await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()
        if stored != n:
            raise RuntimeError(f"the sink wrote {stored} of {n} rows")

        m = mapping_for(s, BY_NAME[TOPIC])
        rows = [m.row(r, topic_name(s, TOPIC), 0, i) for i, r in enumerate(records[:baseline_n])]
        row_s = await _row_by_row(s, rows)
    finally:
        await _cleanup(s)
    sink_rate = n / sink_s
    row_rate = baseline_n / row_s
    return {
        "rows": n,
        "sink_seconds": round(sink_s, 3),
        "sink_rows_per_s": round(sink_rate),
        "sink_batches": sink.stats.batches,
        "baseline_rows": baseline_n,
        "baseline_seconds": round(row_s, 3),
        "baseline_rows_per_s": round(row_rate),
        "speedup": round(sink_rate / row_rate, 1),
    }


def bench_sink(settings: Settings, n: int = 50_000, baseline_n: int | None = None) -> dict:
    """Connector rows/s vs one-INSERT-per-row rows/s for the same staging odds lines."""
    return asyncio.run(bench_sink_async(settings, n, baseline_n))


def format_result(r: dict[str, Any]) -> str:
    return (
        f"sink connector : {r['rows']:>7} rows in {r['sink_seconds']:>7.2f}s"
        f" = {r['sink_rows_per_s']:>8} rows/s ({r['sink_batches']} transactions)\n"
        f"row-by-row     : {r['baseline_rows']:>7} rows in {r['baseline_seconds']:>7.2f}s"
        f" = {r['baseline_rows_per_s']:>8} rows/s (one INSERT per row, autocommit)\n"
        f"speed-up       : {r['speedup']}x"
    )


if __name__ == "__main__":
    import sys

    from core.settings import load_settings

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    print(format_result(bench_sink(load_settings(), count)))
