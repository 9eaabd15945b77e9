"""Replay resets the sink to a time, reprocesses, and the tables have no duplicates."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from bench.sink_rate import odds_line, produce_odds_lines
from core.offsets import admin_client, committed_offsets
from core.settings import Settings
from core.topics import topic_name
from oddsflow.ops.replay import add_replay_arguments, plan_replay, run_replay
from tests.helpers import wait_for, workers


async def _rows(s: Settings) -> int:
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {s.pipeline.zones.staging}.odds_lines")
    finally:
        await conn.close()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    return parser.parse_args(list(argv))


async def test_replay_from_a_time_reprocesses_without_duplicates(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = pipeline_settings
    topic = topic_name(s, "staging.odds_lines")
    with workers(s, ("sink",), tmp_path):
        assert produce_odds_lines(s, [odds_line(i) for i in range(30)]) == 30
        await wait_for(lambda: _rows(s), lambda n: n == 30, what="first 30 rows")
        middle = datetime.now(UTC)
        assert produce_odds_lines(s, [odds_line(i) for i in range(30, 60)]) == 30
        await wait_for(lambda: _rows(s), lambda n: n == 60, what="60 rows")

        # live members: refused, with the way out
        assert await asyncio.to_thread(run_replay, s, _args("--zone", "staging")) == 1
        err = capsys.readouterr().err
        assert f"refusing to reset {s.kafka.topic_prefix}oddsflow-sink: it has 1 live member" in err
        assert "--wait-empty SECONDS" in err and "stop the sink workers" in err

    ends = await asyncio.to_thread(
        committed_offsets, admin_client(s), f"{s.kafka.topic_prefix}oddsflow-sink"
    )
    plan = await asyncio.to_thread(plan_replay, s, "staging", "sink", middle)
    lines = {(p.topic, p.partition): p for p in plan.partitions if p.topic == topic}
    assert plan.records == 30 and sum(p.records for p in lines.values()) == 30
    assert all(p.until == ends[tp] == p.current for tp, p in lines.items())

    # dry run: the same plan as JSON, nothing changed
    assert (
        await asyncio.to_thread(
            run_replay,
            s,
            _args("--zone", "staging", "--from", middle.isoformat(), "--dry-run", "--json"),
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out.splitlines()[0])
    assert doc["records"] == 30 and doc["group"] == f"{s.kafka.topic_prefix}oddsflow-sink"
    assert {(p["topic"], p["partition"]): p["target"] for p in doc["partitions"]} == {
        (p.topic, p.partition): p.target for p in plan.partitions
    }
    assert await asyncio.to_thread(committed_offsets, admin_client(s), plan.group) == ends

    # reset and run: the sink reprocesses the 30 records; the table still has 60 rows
    assert (
        await asyncio.to_thread(
            run_replay, s, _args("--zone", "staging", "--from", middle.isoformat(), "--run")
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"reset {plan.group} on {len(plan.partitions)} partitions" in out
    assert "replayed 30/30 records" in out and out.rstrip().endswith("replayed 30 records")
    assert await _rows(s) == 60
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        dupes = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT kafka_partition, kafka_offset FROM"
            f" {s.pipeline.zones.staging}.odds_lines GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        stored = {
            (r["topic"], r["kafka_partition"]): r["next_offset"]
            for r in await conn.fetch(
                f"SELECT topic, kafka_partition, next_offset FROM"
                f" {s.pipeline.zones.operational}.sink_offsets WHERE topic = $1",
                topic,
            )
        }
    finally:
        await conn.close()
    assert dupes == 0
    assert stored == {tp: ends[tp] for tp in lines}
