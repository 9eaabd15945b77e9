"""Postgres goes away mid-stream and comes back: the sink pauses, keeps its group membership,
resumes by itself and writes every record exactly once (on a private Postgres we may stop)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from bench.sink_rate import odds_line, produce_odds_lines
from core.settings import Settings
from oddsflow.services import postgres
from sinks.connector import SinkConnector
from sinks.migrate import migrate
from tests.helpers import wait_for

TOPIC = "staging.odds_lines"
OUTAGE_S = 12.0  # longer than the consumer's max.poll.interval.ms below


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_pg(pipeline_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The test's topics, but its own Postgres server (initdb in a tmp dir, a free port)."""
    data = pipeline_settings.model_dump()
    data["state_dir"] = tmp_path / "pg"
    data["postgres"] = {**data["postgres"], "port": free_port(), "url": None}
    ps = Settings(**data)
    postgres.start(ps)
    try:
        yield ps
    finally:
        postgres.stop(ps)


async def test_database_outage_mid_stream_pauses_then_resumes_exactly_once(
    private_pg: Settings,
) -> None:
    s = private_pg
    await migrate(s)
    before, during = 1000, 2000
    records = [odds_line(i) for i in range(before + during)]
    table = f"{s.pipeline.zones.staging}.odds_lines"
    batch = 200
    sink = SinkConnector(
        s, topics=[TOPIC], batch_size=batch, pause_after=0.5, max_poll_interval_ms=8000
    )
    stop = asyncio.Event()
    run = asyncio.create_task(sink.run(stop))

    async def count() -> int:
        try:
            conn = await asyncpg.connect(s.postgres.dsn, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return -1
        try:
            return await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()

    try:
        assert await asyncio.to_thread(produce_odds_lines, s, records[:before]) == before
        await wait_for(count, lambda c: c == before, timeout=60, interval=0.2)

        await asyncio.to_thread(postgres.stop, s)
        down_at = time.monotonic()
        assert await count() == -1
        assert await asyncio.to_thread(produce_odds_lines, s, records[before:]) == during
        await wait_for(lambda: asyncio.sleep(0, sink.stats.pauses), lambda p: p >= 1, timeout=30)
        # A worker asked to stop during the outage stops, with nothing written.
        other_stop = asyncio.Event()
        other = SinkConnector(s, topics=[TOPIC], group="other", pause_after=0.2)
        other_run = asyncio.create_task(other.run(other_stop))
        await wait_for(lambda: asyncio.sleep(0, other.stats.pauses), lambda p: p >= 1, timeout=30)
        other_stop.set()
        other_stats = await asyncio.wait_for(other_run, timeout=15)
        assert other_stats.batches == 0 and not other_stats.inserted
        # The outage itself: a duration, not a condition to await.
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert not run.done(), "the sink gave up during the outage"
        assert sink.stats.retries >= 2
        await asyncio.to_thread(postgres.start, s)

        final = await wait_for(count, lambda c: c == before + during, timeout=90, interval=0.3)
        assert final == before + during
        stop.set()
        stats = await run
        # Membership was kept: both partitions assigned once, never lost, never reassigned.
        assert stats.lost == 0
        assert stats.assignments == 2
        # Paused instead of buffering what arrived during the outage.
        assert stats.pauses >= 1
        assert stats.max_buffered < during, stats.max_buffered
        assert stats.inserted[table] == before + during
        conn = await asyncpg.connect(s.postgres.dsn)
        try:
            got = await conn.fetch(f"SELECT source_event_id FROM {table}")
            assert sorted(r[0] for r in got) == sorted(r["source_event_id"] for r in records)
            dead = await conn.fetchval(
                f"SELECT count(*) FROM {s.pipeline.zones.operational}.dead_letters"
            )
            assert dead == 0
        finally:
            await conn.close()
    finally:
        stop.set()
        await asyncio.gather(run, return_exceptions=True)
