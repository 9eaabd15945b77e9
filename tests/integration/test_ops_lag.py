"""`oddsflow lag` against a real sink worker: grows while it is stopped, OK once it is back."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from bench.sink_rate import odds_line, produce_odds_lines
from core.settings import Settings
from oddsflow.ops.burrow import Rules, Status
from oddsflow.ops.lag import GroupLag, LagMonitor, add_lag_arguments, history_table, run_lag
from tests.conftest import settings_env
from tests.helpers import wait_for, workers

TOPIC = "staging.odds_lines"


def _sink(groups: list[GroupLag], settings: Settings) -> GroupLag:
    (g,) = [g for g in groups if g.group == f"{settings.kafka.topic_prefix}oddsflow-sink"]
    return g


def _topic_lag(g: GroupLag, settings: Settings) -> tuple[int, int | None]:
    """(lag, committed sum) of the odds-lines topic."""
    parts = [p for p in g.partitions if p.topic == settings.kafka.topic_prefix + TOPIC]
    committed = sum(p.committed or 0 for p in parts) if parts else None
    return sum(p.lag for p in parts), committed


async def test_lag_grows_while_the_worker_is_stopped_then_ok(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = pipeline_settings
    monitor = LagMonitor(s, ["sink"], Rules(window_seconds=300, min_observations=3, stop_after=5))

    async def sample() -> GroupLag:
        return _sink(await monitor.sample(), s)

    with workers(s, ("sink",), tmp_path / "first"):
        assert produce_odds_lines(s, [odds_line(i) for i in range(40)]) == 40
        g = await wait_for(
            sample,
            lambda g: g.members >= 1 and _topic_lag(g, s) == (0, 40),
            what="sink caught up",
        )
        assert g.status is Status.OK

    # stopped; records keep arriving
    seen: list[GroupLag] = []
    for batch in range(3):
        first = 40 + batch * 10
        assert produce_odds_lines(s, [odds_line(i) for i in range(first, first + 10)]) == 10
        seen.append(await sample())
    assert [g.members for g in seen] == [0, 0, 0]
    assert [_topic_lag(g, s) for g in seen] == [(10, 40), (20, 40), (30, 40)]
    ages = [g.lag_seconds for g in seen]
    assert 0 < ages[0] < ages[1] < ages[2] < 60, ages
    assert [g.status for g in seen] == [Status.STOP] * 3
    stuck = [p for p in seen[-1].partitions if p.lag]
    assert stuck and all(p.status is Status.STOP for p in stuck)

    # the same from the command line (as `oddsflow lag --group sink --json` runs it)
    parser = argparse.ArgumentParser()
    add_lag_arguments(parser)
    args = parser.parse_args(["--group", "sink", "--json", "--stop-after", "5"])
    assert await asyncio.to_thread(run_lag, s, args) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert (doc["group"], doc["status"], doc["members"], doc["lag"]) == (
        f"{s.kafka.topic_prefix}oddsflow-sink",
        "STOP",
        0,
        30,
    )
    assert doc["lag_seconds"] >= ages[2]

    with workers(s, ("sink",), tmp_path / "second"):
        g = await wait_for(
            sample,
            lambda g: g.members >= 1 and _topic_lag(g, s) == (0, 70),
            what="sink caught up again",
        )
        assert g.status is Status.OK and g.lag_seconds == 0.0

    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        rows = await conn.fetch(
            f"SELECT group_status, count(DISTINCT observed_at) AS n FROM {history_table(s)}"
            " WHERE topic = $1 GROUP BY group_status",
            s.kafka.topic_prefix + TOPIC,
        )
        assert (
            await conn.fetchval(f"SELECT count(*) FROM {s.pipeline.zones.staging}.odds_lines") == 70
        )
    finally:
        await conn.close()
    by_status = {r["group_status"]: r["n"] for r in rows}
    assert by_status["STOP"] >= 4  # three samples, the command line, the restart
    assert by_status["OK"] >= 2


def test_a_group_the_live_broker_does_not_know_is_one_line_and_exit_1(
    pipeline_settings: Settings,
) -> None:
    """`oddsflow lag --group nosuch` against a broker that answers: a typo is not a healthy group
    (no `status OK`), it is one line on stderr, exit 1, no traceback."""
    res = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "lag", "--group", "nosuch", "--no-history"],
        env=settings_env(pipeline_settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert "status OK" not in res.stdout
