"""Retention: the roadmap's ``[pipeline.retention]`` days applied to the tables and the topics.

Tables lose rows that arrived (``loaded_at``) longer ago than their zone's days, as Kafka ages
records by when they were appended: a backfill of 2016 lines is kept for the zone's days from the
day it was loaded, not deleted on arrival; -1 keeps a zone forever. Topics get the same horizon as
``retention.ms`` (``core.admin.topic_config`` sets it at creation; :func:`align_topic_retention`
updates topics that already exist after the config changed). The sink worker runs the purge every
``purge_interval_minutes`` (:func:`purge_periodically`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.admin import admin_client, set_topic_configs
from core.settings import Settings
from core.topics import CATALOG, TopicSpec, Zone, topic_name

log = logging.getLogger("oddsflow.retention")

AGE_COLUMN = "loaded_at"  # every sink table has it: when the row arrived


@dataclass(frozen=True)
class TableRetention:
    zone: Zone
    table: str  # schema.table
    time_column: str
    days: int  # -1 keeps forever


def zone_days(settings: Settings, zone: Zone) -> int:
    """Days a zone keeps; operational follows staging, as its topics do (TopicSpec)."""
    r = settings.pipeline.retention
    return {
        Zone.RAW: r.raw_retention_days,
        Zone.STAGING: r.staging_retention_days,
        Zone.CURATED: r.curated_retention_days,
        Zone.OPERATIONAL: r.staging_retention_days,
    }[zone]


def table_retention(settings: Settings) -> list[TableRetention]:
    """One entry per sink table (several raw and dlq topics share a table)."""
    seen: dict[str, TableRetention] = {}
    for spec in CATALOG:
        table = f"{spec.schema_name(settings)}.{spec.table}"
        if table not in seen:
            seen[table] = TableRetention(
                spec.zone,
                table,
                AGE_COLUMN,
                zone_days(settings, spec.zone),
            )
    return list(seen.values())


async def purge_async(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Delete rows older than their zone's retention; returns rows deleted per table."""
    conn = await asyncpg.connect(settings.postgres.dsn)
    deleted: dict[str, int] = {}
    try:
        for t in table_retention(settings):
            if t.days < 0:
                continue
            status = await conn.execute(
                f"DELETE FROM {t.table} WHERE {t.time_column}"
                " < COALESCE($1::timestamptz, now()) - make_interval(days => $2)",
                now,
                t.days,
            )
            deleted[t.table] = int(status.split()[-1])
    finally:
        await conn.close()
    return deleted


async def purge_periodically(settings: Settings, stop: asyncio.Event) -> None:
    """Purge now and then every ``purge_interval_minutes`` until ``stop``; never raises."""
    interval = settings.pipeline.retention.purge_interval_minutes * 60
    while not stop.is_set():
        try:
            deleted = await purge_async(settings)
            if any(deleted.values()):
                log.info("retention purge: %s", {t: n for t, n in deleted.items() if n})
        except Exception as exc:  # an outage: the next round tries again
            log.warning("retention purge failed (%s); retrying in %ss", exc, interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def purge(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """The scheduled purge (cron or ``oddsflow data purge``): rows deleted per table."""
    return asyncio.run(purge_async(settings, now))


def align_topic_retention(
    settings: Settings, specs: tuple[TopicSpec, ...] = CATALOG
) -> dict[str, int]:
    """Set ``retention.ms`` on the catalog's existing topics; returns the value set per topic.

    incremental_alter_configs changes only that key, so a topic's other settings (compaction,
    anything an operator set by hand) are left as they are.
    """
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = {
        topic_name(settings, s.name): s.retention_ms(settings)
        for s in specs
        if topic_name(settings, s.name) in existing
    }
    if not wanted:
        return {}
    set_topic_configs(admin, {name: {"retention.ms": str(ms)} for name, ms in wanted.items()})
    return wanted
