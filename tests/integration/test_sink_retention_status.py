"""Retention purges tables by arrival time (loaded_at) and sets topics' retention.ms;
data status reports lag."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from confluent_kafka.admin import ConfigResource, ResourceType

from bench.sink_rate import odds_line, produce_odds_lines
from core.admin import admin_client
from core.settings import Settings
from core.topics import DAY_MS, topic_name
from sinks.connector import SinkConnector
from sinks.data_status import data_status_async
from sinks.retention import align_topic_retention, purge_async

TOPIC = "staging.odds_lines"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def with_retention(s: Settings, raw: int, staging: int, curated: int) -> Settings:
    data = s.model_dump()
    data["pipeline"]["retention"] = {
        "raw_retention_days": raw,
        "staging_retention_days": staging,
        "curated_retention_days": curated,
    }
    return Settings(**data)


async def test_purge_deletes_rows_older_than_the_zone_keeps(pipeline_settings: Settings) -> None:
    s = with_retention(pipeline_settings, raw=90, staging=30, curated=-1)
    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        for days in (10, 29, 31, 400):  # staging keeps 30 days
            at = NOW - timedelta(days=days)
            await conn.execute(
                f"INSERT INTO {z.staging}.odds_lines (game_id, commence_time, home_team,"
                " away_team, book, market, side, price_american, price_decimal, implied_prob,"
                " event_time, ingested_at, source, source_event_id, kafka_topic,"
                " kafka_partition, kafka_offset, loaded_at) VALUES ('g', $1, 'PIT', 'STL', 'b',"
                " 'moneyline', 'home', -110, 1.91, 0.52, $4, $1, 's', $2, 't', 0, $3, $1)",
                at, f"e{days}", days, datetime(2016, 4, 3, tzinfo=UTC) + timedelta(minutes=days),
            )  # fmt: skip
            await conn.execute(
                f"INSERT INTO {z.raw}.odds_envelopes (event_id, source, fetched_at, content_type,"
                " payload, request, kafka_topic, kafka_partition, kafka_offset, loaded_at)"
                " VALUES ($1, 'sim', $2, 'json', '\\x00', '{}', 't', 0, $3, $2)",
                f"e{days}", at, days,
            )  # fmt: skip
            await conn.execute(
                f"INSERT INTO {z.curated}.consensus (game_id, market, side, event_time,"
                " median_novig_prob, spread_novig_prob, best_price_american, best_book,"
                " book_count, kafka_topic, kafka_partition, kafka_offset, loaded_at) VALUES ('g',"
                " 'moneyline', 'home', $1, 0.5, 0.01, -105, 'b', 3, 't', 0, $2, $1)",
                at, days,
            )  # fmt: skip

        deleted = await purge_async(s, now=NOW)
        # loaded 31 and 400 days ago; the 2016 event time of all four does not matter
        assert deleted[f"{z.staging}.odds_lines"] == 2
        assert deleted[f"{z.raw}.odds_envelopes"] == 1  # only the 400-day one
        assert f"{z.curated}.consensus" not in deleted  # -1: kept forever
        assert deleted[f"{z.operational}.dead_letters"] == 0
        left = await conn.fetch(f"SELECT source_event_id FROM {z.staging}.odds_lines")
        assert sorted(r[0] for r in left) == ["e10", "e29"]
        assert await conn.fetchval(f"SELECT count(*) FROM {z.curated}.consensus") == 4
        assert (await purge_async(s, now=NOW))[f"{z.staging}.odds_lines"] == 0
    finally:
        await conn.close()


def retention_ms_of(s: Settings, topic: str) -> str:
    res = ConfigResource(ResourceType.TOPIC, topic_name(s, topic))
    admin = admin_client(s)  # kept alive until the result is in
    (fut,) = admin.describe_configs([res]).values()
    return fut.result(timeout=30)["retention.ms"].value


async def test_align_topic_retention_updates_existing_topics(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    assert await asyncio.to_thread(retention_ms_of, s, TOPIC) == str(365 * DAY_MS)
    changed = with_retention(s, raw=7, staging=14, curated=-1)
    done = await asyncio.to_thread(align_topic_retention, changed)
    assert done[topic_name(s, TOPIC)] == 14 * DAY_MS
    assert done[topic_name(s, "raw.odds.odds_api")] == 7 * DAY_MS
    assert done[topic_name(s, "raw.odds.simulator")] == -1  # history timelines: kept by size
    assert done[topic_name(s, "curated.consensus")] == -1
    assert await asyncio.to_thread(retention_ms_of, s, TOPIC) == str(14 * DAY_MS)
    assert await asyncio.to_thread(retention_ms_of, s, "raw.odds.sbd") == str(7 * DAY_MS)
    assert await asyncio.to_thread(retention_ms_of, s, "curated.consensus") == "-1"


async def test_data_status_shows_rows_newest_event_and_lag(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    n = 200
    records = [odds_line(i) for i in range(n)]
    assert await asyncio.to_thread(produce_odds_lines, s, records[:150]) == 150
    await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
    assert await asyncio.to_thread(produce_odds_lines, s, records[150:]) == 50

    rows = await data_status_async(s, "staging")
    by_table = {r.table.split(".")[1]: r for r in rows}
    assert set(by_table) == {"odds_lines", "betting_splits", "games"}
    lines = by_table["odds_lines"]
    assert lines.rows == 150
    assert lines.newest == max(r["event_time"] for r in records[:150])
    assert lines.lag == 50  # published after the sink stopped
    assert by_table["games"].rows == 0 and by_table["games"].lag == 0

    everything = await data_status_async(s, "all")
    assert {r.zone for r in everything} == {"raw", "staging", "curated", "operational"}
    assert len(everything) == len({r.table for r in everything})


async def test_the_sink_purges_on_a_schedule_and_stops_with_it(pipeline_settings: Settings) -> None:
    import asyncio

    from sinks.retention import purge_periodically
    from tests.helpers import wait_for

    s = with_retention(pipeline_settings, raw=90, staging=30, curated=-1)
    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await conn.execute(
            f"INSERT INTO {z.raw}.odds_envelopes (event_id, source, fetched_at, content_type,"
            " payload, request, kafka_topic, kafka_partition, kafka_offset, loaded_at)"
            " VALUES ('old', 'sim', now(), 'json', '\\x00', '{}', 't', 0, 1,"
            " now() - interval '91 days'), ('new', 'sim', now(), 'json', '\\x00', '{}', 't', 0,"
            " 2, now())"
        )
        stop = asyncio.Event()
        task = asyncio.create_task(purge_periodically(s, stop))

        async def ids() -> list[str]:
            return [r[0] for r in await conn.fetch(f"SELECT event_id FROM {z.raw}.odds_envelopes")]

        assert await wait_for(ids, lambda v: v == ["new"], timeout=30) == ["new"]
        stop.set()
        await asyncio.wait_for(task, 5)  # the hourly wait ends with the stop, not the hour
    finally:
        await conn.close()
