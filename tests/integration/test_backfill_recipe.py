"""The README's recipe: backfill a new feature version into separate topics and tables while the
live version stays as it is."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from core.admin import create_topics
from core.settings import Settings
from producers.collect import publish_simulation
from producers.simulator import ScriptedJump, Simulator
from sinks.migrate import migrate
from tests.helpers import wait_for, workers

CURATED = (
    "curated.line_velocity", "curated.steam_moves", "curated.sharp_signals",
    "curated.consensus", "curated.feature_vectors",
)  # fmt: skip


def _v2(live: Settings) -> tuple[Settings, Settings]:
    """(feature worker of v2, sink of v2): 2 books make a steam move in v2, 3 in v1."""
    features = live.model_copy(
        update={"features": live.features.model_copy(
            update={"output_prefix": "v2.", "steam_min_books": 2})},
    )  # fmt: skip
    data = live.model_dump()
    data["kafka"]["topic_prefix"] = "v2." + live.kafka.topic_prefix
    data["pipeline"]["zones"]["curated"] = live.pipeline.zones.curated + "_v2"
    data["pipeline"]["zones"]["operational"] = live.pipeline.zones.operational + "_v2"
    return features, Settings(**data)


async def _count(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {table}")


async def test_a_new_feature_version_backfills_beside_the_live_one(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    live = pipeline_settings
    start = datetime(2026, 4, 6, 17, tzinfo=UTC)
    sim = Simulator(
        seed=5, games=1, books=4, ticks=60, start=start, drift=False,
        scripted_jumps=(
            ScriptedJump(0, "pinnacle", 10, -15, both_sides=True),  # two books move together:
            ScriptedJump(0, "draftkings", 11, -15, both_sides=True),  # steam only if N = 2
            ScriptedJump(0, "fanduel", 50, 5, both_sides=True),  # moves event time on
        ),
    )  # fmt: skip
    publish_simulation(live, sim, progress=False)
    z = live.pipeline.zones
    conn = await asyncpg.connect(live.postgres.dsn)
    try:
        with workers(live, ("staging", "features", "sink"), tmp_path / "live"):
            await wait_for(
                lambda: _count(conn, f"{z.curated}.line_velocity"), lambda n: n > 0,
                what="live velocity rows",
            )  # fmt: skip
        live_counts = {t: await _count(conn, f"{z.curated}.{t.split('.')[1]}") for t in CURATED}
        assert live_counts["curated.steam_moves"] == 0  # v1 needs 3 books

        feature_v2, sink_v2 = _v2(live)
        create_topics(sink_v2)
        await migrate(sink_v2)
        with (
            workers(feature_v2, ("features",), tmp_path / "v2-features"),
            workers(sink_v2, ("sink",), tmp_path / "v2-sink"),
        ):
            steam_v2 = await wait_for(
                lambda: _count(conn, f"{sink_v2.pipeline.zones.curated}.steam_moves"),
                lambda n: n >= 1, what="the v2 steam move",
            )  # fmt: skip
        assert steam_v2 == 1
        books = await conn.fetchval(
            f"SELECT books FROM {sink_v2.pipeline.zones.curated}.steam_moves"
        )
        assert sorted(books) == ["draftkings", "pinnacle"]
        # the live version is untouched
        for t in CURATED:
            assert await _count(conn, f"{z.curated}.{t.split('.')[1]}") == live_counts[t], t
    finally:
        await conn.close()
