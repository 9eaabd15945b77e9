"""``[pipeline] mode`` and ``quality_gates`` as the roadmap says: the workers a mode needs and no
others (worker all, pipeline run), health and status expecting just those, and a one-off run that
stops before the curated zone when staging quality is below the threshold unless gates are off.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from core.settings import Settings
from oddsflow.ops.health import check_workers, health, pipeline_status
from producers.collect import publish_simulation
from producers.publisher import Publisher
from producers.simulator import Simulator
from tests.conftest import settings_env
from tests.helpers import wait_for

START = datetime(2026, 4, 3, 17, tzinfo=UTC)


def _with(s: Settings, **pipeline: Any) -> Settings:
    """``s`` with [pipeline] keys changed (``processing`` merged, not replaced)."""
    data = s.model_dump()
    data["pipeline"]["processing"].update(pipeline.pop("processing", {}))
    data["pipeline"].update(pipeline)
    return Settings(**data)  # validated, as a child process will load it


def _cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", *args],
        env=settings_env(s), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


async def _count(s: Settings, table: str) -> int:
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


async def test_worker_all_in_staging_only_runs_staging_and_sink_and_health_expects_them(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = _with(pipeline_settings, mode="staging_only")
    with open(tmp_path / "all.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oddsflow.cli", "worker", "all"], env=settings_env(s),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        async def report() -> Any:
            return await health(s, timeout=5)

        got = await wait_for(report, lambda r: r.ok, timeout=120, what="a healthy staging_only")
        workers = next(c for c in got.checks if c.name == "workers")
        assert workers.data["members"] == {"staging": 1, "sink": 1}
        assert "pipeline.mode staging_only" in workers.detail
        assert not check_workers(s, ("features",), 10).ok  # no features worker was started
        stages = await pipeline_status(s, interval=0.5)
        assert [st.stage for st in stages] == ["staging", "sink"]
        assert all(len(st.workers) == 1 for st in stages)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "all.log").read_text()[-3000:]
    refused = _cli(s, "worker", "features")
    assert refused.returncode != 0 and "pipeline.mode is staging_only" in refused.stderr


async def test_raw_only_run_fills_the_raw_zone_alone(pipeline_settings: Settings) -> None:
    s = _with(pipeline_settings, mode="raw_only")
    sim = Simulator(seed=8, games=1, books=2, ticks=10, start=START)
    assert publish_simulation(s, sim, progress=False).stats.acked == 20
    run = _cli(s, "pipeline", "run", "--full", "--quiet", "3")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "starting sink (" in run.stdout and "staging" not in run.stdout.split("(")[0]
    z = s.pipeline.zones
    assert await _count(s, f"{z.raw}.odds_envelopes") == 20
    assert await _count(s, f"{z.staging}.odds_lines") == 0
    refused = _cli(s, "pipeline", "run", "--zone", "staging")
    assert refused.returncode != 0 and "ODDSFLOW_PIPELINE__MODE" in refused.stderr


async def test_quality_gate_stops_before_curated_unless_gates_are_off(
    pipeline_settings: Settings,
) -> None:
    s = _with(pipeline_settings, quality_threshold=0.99, quality_report_seconds=1.0)
    sim = Simulator(seed=9, games=1, books=2, ticks=50, start=START)  # past the lateness
    assert publish_simulation(s, sim, progress=False).stats.acked == 100
    junk = Publisher(s, "simulator")
    for i in range(15):  # 15 refused records against ~100 raw records: below 99%
        junk.publish_encoded(f"junk-{i}".encode(), b"\x00\xffnot avro")
    assert junk.flush() == 0
    z = s.pipeline.zones

    gated = _cli(s, "pipeline", "run", "--full", "--quiet", "3")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "BELOW" in gated.stdout and "quality gate failed" in gated.stderr
    assert "the curated zone was not built" in gated.stderr
    assert "features" not in gated.stdout  # never started
    assert await _count(s, f"{z.staging}.odds_lines") > 0
    assert await _count(s, f"{z.curated}.line_velocity") == 0

    ungated = _cli(
        _with(s, processing={"quality_gates": False}), "pipeline", "run", "--full", "--quiet", "3"
    )
    assert ungated.returncode == 0, ungated.stdout + ungated.stderr
    assert "gates off" in ungated.stdout
    assert await _count(s, f"{z.curated}.line_velocity") > 0
