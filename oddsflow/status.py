"""Read-only views of the pipeline: records per topic, rows per table, dead letters, top moves."""

from __future__ import annotations

from typing import Any

import asyncpg
from confluent_kafka import Consumer

from core.kafka_config import client_config
from core.offsets import topic_watermarks
from core.settings import Settings
from core.topics import CATALOG, topic_name


def topic_counts(settings: Settings) -> dict[str, int]:
    """Offsets in use per catalog topic (end offset − start offset, summed over partitions):
    the records, plus the commit markers of topics written in transactions (curated)."""
    consumer = Consumer(client_config(settings, **{"group.id": "oddsflow-status"}))
    try:
        md = consumer.list_topics(timeout=10)
        counts: dict[str, int] = {}
        for s in CATALOG:
            name = topic_name(settings, s.name)
            t = md.topics.get(name)
            if t is None or t.error is not None:
                continue
            marks = topic_watermarks(consumer, name, topics=md.topics)
            counts[s.name] = sum(max(high - low, 0) for low, high in marks.values())
        return counts
    finally:
        consumer.close()


def tables(settings: Settings) -> list[str]:
    seen: list[str] = []
    for s in CATALOG:
        q = f"{s.schema_name(settings)}.{s.table}"
        if q not in seen:
            seen.append(q)
    return seen


async def table_counts(settings: Settings, conn: asyncpg.Connection) -> dict[str, int]:
    out = {}
    for q in tables(settings):
        out[q] = await conn.fetchval(f"SELECT count(*) FROM {q}")
    return out


async def count_rows(settings: Settings) -> dict[str, int]:
    """Rows per zone table now, on a connection of its own (:func:`table_counts`)."""
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        return await table_counts(settings, conn)
    finally:
        await conn.close()


async def dead_letters_by_reason(
    settings: Settings, conn: asyncpg.Connection, limit: int = 10
) -> list[asyncpg.Record]:
    ops = settings.pipeline.zones.operational
    return await conn.fetch(
        f"SELECT stage, error_class, count(*) AS n, min(reason) AS example"
        f" FROM {ops}.dead_letters GROUP BY stage, error_class ORDER BY n DESC LIMIT $1",
        limit,
    )


async def largest_moves(settings: Settings, conn: asyncpg.Connection, limit: int = 5) -> list[Any]:
    cur = settings.pipeline.zones.curated
    return await conn.fetch(
        f"SELECT game_id, market, side, book, window_minutes, event_time, unit, value_before,"
        f" value, change, velocity FROM {cur}.line_velocity"
        f" WHERE book <> 'median' ORDER BY abs(change) DESC, event_time LIMIT $1",
        limit,
    )
