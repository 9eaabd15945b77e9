"""The walking skeleton, end to end on the real broker and database: exact values out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from confluent_kafka import Consumer

from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import topic_name
from producers.collect import publish_simulation
from producers.simulator import ScriptedJump, Simulator
from schemas.codec import default_codec
from tests.helpers import wait_for, workers

START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)
JUMP_TICK = 10


async def test_a_known_jump_flows_from_collector_to_analytics(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    sim = Simulator(
        seed=11, games=1, books=3, ticks=60, tick_seconds=30, start=START, drift=False,
        scripted_jumps=(
            ScriptedJump(game=0, book="draftkings", tick=JUMP_TICK, cents=-20),
            # A later move advances event time past the allowed lateness, releasing the first.
            ScriptedJump(game=0, book="fanduel", tick=55, cents=5),
        ),
    )  # fmt: skip
    game = sim.schedule[0]
    game_id = f"MLB-{game.commence.astimezone().strftime('%Y%m%d')}-{game.away}@{game.home}-1"
    jump_at = START + timedelta(seconds=JUMP_TICK * 30)
    z = s.pipeline.zones

    with workers(s, ("staging", "features", "sink"), tmp_path / "logs") as procs:
        pub = publish_simulation(s, sim, progress=False)
        assert pub.stats.acked == 180 and pub.stats.failed == 0

        conn = await asyncpg.connect(s.postgres.dsn)
        try:

            async def velocity_row() -> asyncpg.Record | None:
                return await conn.fetchrow(
                    f"SELECT * FROM {z.curated}.line_velocity WHERE game_id = $1 AND"
                    " market = 'moneyline' AND side = 'home' AND book = 'draftkings'"
                    " AND window_minutes = 5 AND event_time = $2",
                    game_id, jump_at,
                )  # fmt: skip

            row = await wait_for(velocity_row, lambda r: r is not None, what="the jump's row")
            assert all(p.poll() is None for p in procs.values()), "a worker died"
            assert row["unit"] == "cents"
            assert row["change"] == -20.0
            assert row["velocity"] == -4.0
            assert row["value"] == row["value_before"] - 20

            async def count(table: str) -> int:
                return await conn.fetchval(f"SELECT count(*) FROM {table}")

            # 1 game x 3 books x 60 ticks of snapshots, all kept verbatim in the raw zone.
            await wait_for(lambda: count(f"{z.raw}.odds_envelopes"), lambda n: n == 180)
            # Prices never drift: the first snapshot's 6 lines per book, plus the two jumps.
            await wait_for(lambda: count(f"{z.staging}.odds_lines"), lambda n: n == 20)
            assert await count(f"{z.operational}.dead_letters") == 0
            lineage = await conn.fetchrow(
                f"SELECT kafka_topic, kafka_offset FROM {z.staging}.odds_lines"
                " WHERE book = 'draftkings' AND market = 'moneyline' AND side = 'home'"
                " AND event_time = $1",
                jump_at,
            )
            assert lineage["kafka_topic"] == topic_name(s, "staging.odds_lines")
        finally:
            await conn.close()

    # A downstream subscriber decodes the same record from the curated topic.
    consumer = Consumer(consumer_config(s, f"{s.kafka.topic_prefix}reader"))
    consumer.subscribe([topic_name(s, "curated.line_velocity")])
    found = None
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            rec = default_codec().decode(msg.value())
            if (rec["book"], rec["market"], rec["window_minutes"], rec["event_time"]) == (
                "draftkings", "moneyline", 5, jump_at,
            ):  # fmt: skip
                found = rec
                break
    finally:
        consumer.close()
    assert found is not None and found["change"] == -20.0 and found["game_id"] == game_id
