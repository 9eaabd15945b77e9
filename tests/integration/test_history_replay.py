"""A historical replay with the default configuration, gates on, builds every zone.

The user's backfill recipe, as the README gives it: ``oddsflow collect --source file`` on a line
history (here the real Pinnacle sample, gzipped as the data set ships), then ``oddsflow pipeline
run --full``. Historical quotes are judged by when they were recorded, not by how long ago that
was, and a history row that carries the final score is the file's way of giving the result: so
nothing is refused by the quality gate, every raw record has its fate, and raw_data,
core_betting, analytics and operational all get their rows.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg

from core.settings import Settings
from tests.conftest import settings_env
from tests.fixtures_path import PINNACLE


def _cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", *args],
        env=settings_env(s), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


async def test_a_history_replay_with_the_default_config_builds_every_zone(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    defaults = Settings()
    assert s.pipeline.processing.quality_gates and defaults.pipeline.processing.quality_gates
    assert s.pipeline.quality_threshold == defaults.pipeline.quality_threshold == 0.8
    history = tmp_path / (PINNACLE.name + ".gz")
    with PINNACLE.open("rb") as plain, gzip.open(history, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    with PINNACLE.open() as f:
        table = list(csv.DictReader(f))
    rows = len(table)  # one raw record a row
    # 20 games, one of them moved to another start time: 21 scheduled games
    games = len({(r["AwayTeam"], r["HomeTeam"], r["EventDateTimeUTC"]) for r in table})

    collect = _cli(s, "collect", "--source", "file", str(history), "--no-progress")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert f"file: {rows} raw records acknowledged by the broker (0 failed)" in collect.stdout
    run = _cli(s, "pipeline", "run", "--full", "--quiet", "4")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "quality gate failed" not in run.stderr and "BELOW" not in run.stdout

    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:

        async def count(table: str, where: str = "") -> int:
            return await conn.fetchval(f"SELECT count(*) FROM {table} {where}")

        assert await count(f"{z.raw}.odds_envelopes") == rows
        assert await count(f"{z.staging}.odds_lines") > 1000
        assert await count(f"{z.staging}.games") == games == 21
        finals = await count(f"{z.staging}.games", "WHERE status = 'final'")
        assert finals == games  # the file's result, not an inconsistency
        for table in ("line_velocity", "feature_vectors", "consensus"):
            assert await count(f"{z.curated}.{table}") > 0, table
        assert await count(f"{z.operational}.quality") > 0
        refused = await conn.fetch(
            f"SELECT error_class, reason FROM {z.operational}.dead_letters WHERE stage = 'staging'"
        )
        # the sample's one crossed total (over +108 / under -101: 98.3% implied) is refused as
        # impossible, as it should be; nothing is refused for its age or for its final score
        assert [r["error_class"] for r in refused] == ["implausible_market"], refused
        assert "over 108 / under -101" in refused[0]["reason"]
    finally:
        await conn.close()

    quality = _cli(s, "pipeline", "quality", "--json")
    assert quality.returncode == 0, quality.stdout + quality.stderr
    [row] = [r for r in json.loads(quality.stdout) if r["source"] == "file"]
    assert row["raw_in"] == row["raw_promoted"] + row["raw_unchanged"] == rows, row
    assert row["dead_lettered"] == 1 and row["late"] == 0 and row["balanced"], row
