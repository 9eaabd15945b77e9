"""``oddsflow data status --zone …``: per table its rows, newest event time and sink lag.

Lag is counted in records: the topics' end offsets minus the sink's stored ``next_offset`` (the
position committed with the rows, so it is exact, unlike Kafka's advisory committed offsets).
A partition the sink has never written counts from its first available offset.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from confluent_kafka import Consumer

from core.kafka_config import client_config
from core.offsets import topic_watermarks
from core.settings import Settings
from core.topics import CATALOG, Zone, topic_name
from sinks.connector import DEFAULT_GROUP

# The column holding a row's event time, where it is not called event_time.
EVENT_TIME_COLUMN: dict[str, str] = {
    "odds_envelopes": "fetched_at",
    "steam_moves": "detected_at",
    "quality": "window_start",
    "pipeline_events": "at",
    "dead_letters": "failed_at",
}

ZONES = ("raw", "staging", "curated", "operational", "all")


@dataclass(frozen=True)
class TableStatus:
    zone: str
    table: str  # schema.table
    rows: int
    newest: datetime | None  # newest event (or fetch) time in the table
    lag: int | None  # records on its topics not yet in the table; None: no topic exists


def _end_and_start(settings: Settings, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) watermark per partition of the topics that exist."""
    consumer = Consumer(client_config(settings, **{"group.id": f"status-{uuid.uuid4().hex[:8]}"}))
    try:
        meta = consumer.list_topics(timeout=10).topics
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in topics:
            for p, marks in topic_watermarks(consumer, topic, topics=meta).items():
                out[(topic, p)] = marks
        return out
    finally:
        consumer.close()


async def data_status_async(
    settings: Settings, zone: str = "all", group: str = DEFAULT_GROUP
) -> list[TableStatus]:
    """See :func:`data_status`."""
    if zone not in ZONES:
        raise ValueError(f"zone must be one of {', '.join(ZONES)}, not {zone!r}")
    tables: dict[str, tuple[Zone, str, list[str]]] = {}
    for spec in CATALOG:
        if zone != "all" and spec.zone.value != zone:
            continue
        table = f"{spec.schema_name(settings)}.{spec.table}"
        column = EVENT_TIME_COLUMN.get(spec.table, "event_time")
        tables.setdefault(table, (spec.zone, column, []))[2].append(topic_name(settings, spec.name))
    all_topics = [t for _, _, ts in tables.values() for t in ts]
    marks = await asyncio.to_thread(_end_and_start, settings, all_topics)
    ops = settings.pipeline.zones.operational
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        stored = {
            (r["topic"], r["kafka_partition"]): r["next_offset"]
            for r in await conn.fetch(
                f"SELECT topic, kafka_partition, next_offset FROM {ops}.sink_offsets"
                " WHERE consumer_group = $1",
                settings.kafka.topic_prefix + group,
            )
        }
        out = []
        for table, (z, column, topics) in tables.items():
            row = await conn.fetchrow(f"SELECT count(*) AS n, max({column}) AS newest FROM {table}")
            parts = [(tp, lh) for tp, lh in marks.items() if tp[0] in topics]
            lag = (
                sum(max(high - max(stored.get(tp, low), low), 0) for tp, (low, high) in parts)
                if parts
                else None
            )
            out.append(TableStatus(z.value, table, row["n"], row["newest"], lag))
        return out
    finally:
        await conn.close()


def data_status(
    settings: Settings, zone: str = "all", group: str = DEFAULT_GROUP
) -> list[TableStatus]:
    """Rows, newest event time and lag behind its topics, for each table of ``zone``."""
    return asyncio.run(data_status_async(settings, zone, group))


def format_status(rows: list[TableStatus]) -> str:
    """The table ``oddsflow data status`` prints."""
    lines = [f"{'table':<40} {'rows':>10} {'newest event':<26} {'lag':>8}"]
    for r in rows:
        newest = r.newest.isoformat(timespec="seconds") if r.newest else "-"
        lag = "-" if r.lag is None else str(r.lag)
        lines.append(f"{r.table:<40} {r.rows:>10} {newest:<26} {lag:>8}")
    return "\n".join(lines)
