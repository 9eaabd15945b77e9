"""The sink writes every record exactly once: through SIGKILLs, replays and a shared group."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from bench.sink_rate import odds_line, produce_odds_lines
from core.settings import Settings
from core.topics import topic_name
from sinks.connector import SinkConnector
from tests.conftest import settings_env
from tests.helpers import wait_for

TOPIC = "staging.odds_lines"


def start_sink(s: Settings, log: Path, batch_size: int | None = None) -> subprocess.Popen[bytes]:
    """A real `oddsflow worker sink` process (its own session, so SIGKILL takes it all)."""
    env = settings_env(s)
    if batch_size is not None:  # the connector batches 20 x pipeline.batch_size records
        env["ODDSFLOW_PIPELINE__BATCH_SIZE"] = str(batch_size)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "oddsflow.cli", "worker", "sink", "--topics", TOPIC],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        os.killpg(p.pid, sig)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def key(rec: dict) -> tuple:
    return (rec["game_id"], rec["book"], rec["market"], rec["side"], rec["event_time"])


async def table_keys(conn: asyncpg.Connection, s: Settings) -> list[tuple]:
    rows = await conn.fetch(
        f"SELECT game_id, book, market, side, event_time FROM {s.pipeline.zones.staging}.odds_lines"
    )
    return [tuple(r) for r in rows]


async def test_sigkill_at_random_points_loses_and_doubles_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    n, kills = 3000, 4
    records = [odds_line(i) for i in range(n)]
    chunks = [records[i :: kills + 1] for i in range(kills + 1)]
    table = f"{s.pipeline.zones.staging}.odds_lines"
    conn = await asyncpg.connect(s.postgres.dsn)
    rng = random.Random(20260401)
    counts_at_kill: list[int] = []

    def trickle(chunk: list[dict]) -> int:
        """Publish a chunk in small pieces, so records flow while the worker runs."""
        sent = 0
        for i in range(0, len(chunk), 40):
            sent += produce_odds_lines(s, chunk[i : i + 40])
        return sent

    try:

        async def count() -> int:
            return await conn.fetchval(f"SELECT count(*) FROM {table}")

        for chunk in chunks[:kills]:
            before = await count()
            # 20-record transactions: a kill lands between, inside or right after one.
            p = start_sink(s, tmp_path / "sink.log", batch_size=1)
            producing = asyncio.create_task(asyncio.to_thread(trickle, chunk))
            try:
                await wait_for(count, lambda c, b=before: c > b, timeout=60, interval=0.02)
                await asyncio.sleep(rng.uniform(0.0, 0.5))
            finally:
                stop(p, signal.SIGKILL)
            assert p.returncode == -signal.SIGKILL
            assert await producing == len(chunk)
            counts_at_kill.append(await count())
        # Every kill hit a worker mid-stream: it had written some records, not all of them.
        assert len(counts_at_kill) == kills
        assert all(0 < c < n for c in counts_at_kill), counts_at_kill

        assert await asyncio.to_thread(produce_odds_lines, s, chunks[-1]) == len(chunks[-1])
        p = start_sink(s, tmp_path / "sink.log")
        try:
            await wait_for(count, lambda c: c >= n, timeout=60, what="all records")
        finally:
            stop(p)
        assert p.returncode == 0
        got = await table_keys(conn, s)
        assert len(got) == n
        assert set(got) == {key(r) for r in records}
        lineage = await conn.fetch(f"SELECT DISTINCT kafka_partition, kafka_offset FROM {table}")
        assert len(lineage) == n  # each record of the topic is one row
        ends = await conn.fetch(
            f"SELECT kafka_partition, next_offset FROM {s.pipeline.zones.operational}.sink_offsets"
            " WHERE topic = $1",
            topic_name(s, TOPIC),
        )
        per_partition = {
            r["kafka_partition"]: r["c"]
            for r in await conn.fetch(
                f"SELECT kafka_partition, count(*) AS c FROM {table} GROUP BY 1"
            )
        }
        assert {r["kafka_partition"]: r["next_offset"] for r in ends} == per_partition
        dead = await conn.fetchval(
            f"SELECT count(*) FROM {s.pipeline.zones.operational}.dead_letters"
        )
        assert dead == 0
    finally:
        await conn.close()


async def test_replay_from_the_beginning_changes_no_row_count(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    n = 600
    records = [odds_line(i) for i in range(n)]
    assert await asyncio.to_thread(produce_odds_lines, s, records) == n
    table = f"{s.pipeline.zones.staging}.odds_lines"
    ops = s.pipeline.zones.operational

    async def drain(group: str) -> SinkConnector:
        sink = SinkConnector(s, topics=[TOPIC], group=group)
        await sink.run(asyncio.Event(), idle_exit=1.0)
        return sink

    first = await drain("sink-a")
    assert first.stats.inserted[table] == n
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        loaded = await conn.fetch(f"SELECT kafka_offset, kafka_partition, loaded_at FROM {table}")
        assert len(loaded) == n

        # A new consumer group reads the topic from the start: every key is already there.
        second = await drain("sink-b")
        assert second.stats.consumed == n
        assert second.stats.inserted[table] == 0 and second.stats.existing == n

        # The same group with its stored positions deleted replays from the start as well.
        deleted = await conn.execute(
            f"DELETE FROM {ops}.sink_offsets WHERE consumer_group = $1",
            s.kafka.topic_prefix + "sink-a",
        )
        assert deleted == "DELETE 2"  # both partitions had a stored position
        third = await drain("sink-a")
        assert third.stats.consumed == n and third.stats.inserted[table] == 0

        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == n
        # Untouched: the replays did not rewrite the rows either.
        assert (
            await conn.fetch(f"SELECT kafka_offset, kafka_partition, loaded_at FROM {table}")
            == loaded
        )
    finally:
        await conn.close()


async def test_two_workers_share_the_partitions_and_write_each_record_once(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    n = 2000
    records = [odds_line(i) for i in range(n)]
    table = f"{s.pipeline.zones.staging}.odds_lines"
    stop_event = asyncio.Event()
    # Small batches, so both are still writing when the second one joins.
    a = SinkConnector(s, topics=[TOPIC], batch_size=50)
    b = SinkConnector(s, topics=[TOPIC], batch_size=50)
    runs = [asyncio.create_task(a.run(stop_event)), asyncio.create_task(b.run(stop_event))]
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await wait_for(
            lambda: asyncio.sleep(0, (a.stats.assignments, b.stats.assignments)),
            lambda ab: ab[0] > 0 and ab[1] > 0 and ab[0] + ab[1] >= 2,
            timeout=60,
            interval=0.1,
            what="both workers assigned",
        )
        assert await asyncio.to_thread(produce_odds_lines, s, records) == n

        async def count() -> int:
            return await conn.fetchval(f"SELECT count(*) FROM {table}")

        await wait_for(count, lambda c: c >= n, timeout=60, interval=0.2)
        stop_event.set()
        await asyncio.gather(*runs)
        assert a.stats.inserted[table] > 0 and b.stats.inserted[table] > 0
        assert a.stats.inserted[table] + b.stats.inserted[table] == n
        assert set(await table_keys(conn, s)) == {key(r) for r in records}
        assert await count() == n
        partitions = await conn.fetch(
            f"SELECT kafka_partition, count(*) AS c FROM {table} GROUP BY 1 ORDER BY 1"
        )
        assert [r["kafka_partition"] for r in partitions] == [0, 1]
    finally:
        stop_event.set()
        await asyncio.gather(*runs, return_exceptions=True)
        await conn.close()
