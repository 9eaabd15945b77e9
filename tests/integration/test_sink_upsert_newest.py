"""A game's row holds its newest state: an older record delivered later (a re-send after a
crash, a replay) does not roll it back, within a batch or across batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import topic_name
from schemas.codec import default_codec
from sinks.connector import SinkConnector

TOPIC = "staging.games"
T0 = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)


def game(game_id: str, minute: int, status: str, home_score: int | None) -> dict[str, Any]:
    return {
        "game_id": game_id, "home_team": "NYY", "away_team": "BOS",
        "commence_time": T0 + timedelta(hours=6), "game_number": 1, "status": status,
        "home_score": home_score, "away_score": None if home_score is None else 2,
        "home_pitcher": None, "away_pitcher": None, "source": "simulator",
        "event_time": T0 + timedelta(minutes=minute), "ingested_at": T0,
        "source_event_id": f"ev-{game_id}-{minute}",
    }  # fmt: skip


def produce(s: Settings, records: list[dict[str, Any]]) -> None:
    encode = default_codec().encoder("oddsflow.staging.Game")
    p = Producer(producer_config(s))
    for r in records:
        p.produce(topic_name(s, TOPIC), key=r["game_id"].encode(), value=encode(r))
    assert p.flush(30) == 0


async def status_of(conn: asyncpg.Connection, table: str) -> dict[str, tuple[str, int | None]]:
    rows = await conn.fetch(f"SELECT game_id, status, home_score FROM {table}")
    return {r["game_id"]: (r["status"], r["home_score"]) for r in rows}


async def test_an_older_game_record_delivered_later_does_not_roll_the_row_back(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    table = f"{s.pipeline.zones.staging}.games"
    # one batch: g1 final then its older pre-game state; g2 in order
    first = [game("g1", 300, "final", 5), game("g1", 10, "scheduled", None),
             game("g2", 10, "scheduled", None), game("g2", 300, "final", 1)]  # fmt: skip
    await asyncio.to_thread(produce, s, first)
    await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        assert await status_of(conn, table) == {"g1": ("final", 5), "g2": ("final", 1)}
        # a later batch re-sends an old state of g1 and a newer one of g2 (a correction)
        await asyncio.to_thread(
            produce, s, [game("g1", 200, "in_progress", 3), game("g2", 301, "final", 4)]
        )
        await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
        assert await status_of(conn, table) == {"g1": ("final", 5), "g2": ("final", 4)}
    finally:
        await conn.close()


async def test_equal_event_times_are_decided_by_content_not_arrival(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    table = f"{s.pipeline.zones.staging}.games"
    a, b = game("g3", 50, "in_progress", 1), game("g3", 50, "in_progress", 2)
    a["source_event_id"], b["source_event_id"] = "ev-a", "ev-b"  # same time, two sources
    await asyncio.to_thread(produce, s, [b, a])  # b first: arrival order must not decide
    await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
    await asyncio.to_thread(produce, s, [a])  # a again, later, in another batch
    await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        assert await status_of(conn, table) == {"g3": ("in_progress", 2)}  # ev-b > ev-a
    finally:
        await conn.close()
