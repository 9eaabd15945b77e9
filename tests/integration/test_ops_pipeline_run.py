"""``oddsflow pipeline run --full`` drains the input through every zone and stops; a second run
adds nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import asyncpg

from core.settings import Settings
from producers.collect import publish_simulation
from producers.simulator import ScriptedJump, Simulator
from tests.conftest import settings_env


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "pipeline", "run", *args, "--quiet", "4"],
        env=settings_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


async def test_full_run_drains_every_zone_and_is_idempotent(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    sim = Simulator(
        seed=4, games=1, books=3, ticks=50, start=datetime(2026, 4, 3, 17, tzinfo=UTC),
        drift=False, scripted_jumps=(ScriptedJump(0, "pinnacle", 5, -20),
                                     ScriptedJump(0, "fanduel", 45, 10)),
    )  # fmt: skip
    assert publish_simulation(s, sim, progress=False).stats.acked == 150
    first = _run(s, "--full")
    assert first.returncode == 0, first.stdout + first.stderr
    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes") == 150
        assert await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines") == 20
        moved = await conn.fetchval(
            f"SELECT change FROM {z.curated}.line_velocity WHERE book = 'pinnacle'"
            " AND market = 'moneyline' AND side = 'home' AND window_minutes = 5"
            " ORDER BY abs(change) DESC LIMIT 1"
        )
        assert moved == -20.0
        assert f"{z.staging}.odds_lines" in first.stdout and "+20" in first.stdout
        quality = subprocess.run(
            [sys.executable, "-m", "oddsflow.cli", "pipeline", "quality", "--zone", "staging"],
            env=settings_env(s), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert quality.returncode == 0, quality.stdout + quality.stderr
        sim_row = next(line for line in quality.stdout.splitlines() if line.startswith("simulator"))
        # 150 raw records: 2 carry the jumps... every record's parts are accounted for.
        assert sim_row.split()[1] == "150" and sim_row.endswith("True")
        second = _run(s, "--full")
        assert second.returncode == 0, second.stderr
        assert "+" not in second.stdout.split("rows added per table:")[1]
        assert await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines") == 20
    finally:
        await conn.close()
