"""The backfill stage: a season of history replayed into all four zones, publish to drained.

A synthetic season in the real Pinnacle line-history format (``tests/fixtures/pinnacle``): 15
games a day, 30 teams, each game quoted ~100 times over the two days before first pitch
(moneyline, run line and total, prices on a random walk, the final score on every row as the
real file carries it). It is replayed as ``oddsflow collect --source file`` does (keyed by game,
record timestamp = the row's recorded time) into the running staging, features and sink workers;
the clock runs from the first record published to every group drained (lag 0: raw rows, staged
lines and curated results all in Postgres). Issue 16 measured 149 s for a real season of 241,099
rows before staging read partitions in timestamp order and curated results left at once.
"""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.stages import isolated_settings, worker_processes
from core.domain.teams import CODES, FULL_NAMES
from core.settings import Settings

HEADER = [
    "BaseballRefID",
    "EventDateTimeUTC",
    "AwayTeam",
    "HomeTeam",
    "DoubleHeaderGame",
    "AwayStartingPitcher",
    "HomeStartingPitcher",
    "FinalScoreAway",
    "FinalScoreHome",
    "EnteredDateTimeUTC",
    "SpreadTeam1",
    "SpreadUS1",
    "SpreadUS2",
    "MoneyUS1",
    "MoneyUS2",
    "TotalPoints",
    "TotalUSOver",
    "TotalUSUnder",
]
SEASON_START = datetime(2025, 4, 1, 23, 5, tzinfo=UTC)


def _american(p: float) -> int:
    return round(-100 * p / (1 - p)) if p >= 0.5 else round(100 * (1 - p) / p)


def write_season(path: Path, rows: int, seed: int = 2016) -> int:
    """A season of ``rows`` Pinnacle-format rows (15 games a day); returns the games."""
    rng = random.Random(seed)
    names = {code: name for name, code in FULL_NAMES.items()}
    per_game = 103
    games = max(1, rows // per_game)
    written = 0
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        teams: list[str] = []
        for g in range(games):
            day, slot = divmod(g, 15)
            if slot == 0:
                teams = list(CODES)
                rng.shuffle(teams)
            home, away = teams[2 * slot], teams[2 * slot + 1]
            commence = SEASON_START + timedelta(days=day)
            ref = f"{home}{commence:%Y%m%d}0"
            p_home, total = 0.45 + rng.random() * 0.15, 7.5 + rng.choice((0, 0.5, 1, 1.5))
            spread = -1.5 if p_home >= 0.5 else 1.5
            at = commence - timedelta(hours=48)
            n = per_game if g < games - 1 else max(1, rows - written)
            step = timedelta(hours=48) / (n + 1)
            score = (rng.randint(0, 9), rng.randint(0, 9))
            for _ in range(n):
                at += step * (0.5 + rng.random())
                if at >= commence:
                    at = commence - timedelta(seconds=1)
                p_home = min(0.8, max(0.2, p_home + rng.gauss(0, 0.006)))
                if rng.random() < 0.05:
                    total += rng.choice((-0.5, 0.5))
                vig = 0.02
                out.writerow((
                    ref, f"{commence:%Y-%m-%d %H:%M:%S}+00:00", names[away], names[home], "0.0",
                    "A PITCHER", "H PITCHER", score[0], f"{score[1]}.0",
                    f"{at:%Y-%m-%d %H:%M:%S.%f}+00:00",
                    -spread, f"{_american(0.5 + vig) + 0.0}", f"{_american(0.5 + vig) + 0.0}",
                    f"{_american(1 - p_home + vig) + 0.0}", f"{_american(p_home + vig) + 0.0}",
                    total, _american(0.5 + vig), _american(0.5 + vig),
                ))  # fmt: skip
                written += 1
    return games


async def _counts(s: Settings) -> dict[str, int]:
    conn = await asyncpg.connect(s.postgres.dsn)
    z = s.pipeline.zones
    try:
        out = {}
        for name, table in (
            ("raw rows", f"{z.raw}.odds_envelopes"),
            ("staged lines", f"{z.staging}.odds_lines"),
            ("velocity rows", f"{z.curated}.line_velocity"),
            ("consensus rows", f"{z.curated}.consensus"),
            ("steam moves", f"{z.curated}.steam_moves"),
            ("dead letters", f"{z.operational}.dead_letters"),
        ):
            out[name] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        return out
    finally:
        await conn.close()


def backfill_stage(
    settings: Settings, rows: int, log_dir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Replay a synthetic season of ``rows`` rows into all zones; seconds to drained."""
    from core.admin import create_topics
    from core.offsets import admin_client
    from oddsflow.ops.lag import observe
    from producers.history import pinnacle_records, replay
    from producers.publisher import Publisher
    from sinks.migrate import migrate
    from streams.features.worker import features_group
    from streams.staging.worker import staging_group

    s = isolated_settings(settings)
    create_topics(s)
    asyncio.run(migrate(s))
    path = log_dir / f"{s.kafka.topic_prefix}season.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    games = write_season(path, rows)
    records = pinnacle_records(path)
    groups = [staging_group(s), features_group(s), f"{s.kafka.topic_prefix}oddsflow-sink"]
    with worker_processes(s, ("staging", "features", "sink"), log_dir) as procs:
        publisher = Publisher(s, "file")
        publisher.connect()
        t0 = time.monotonic()
        result = replay(publisher, records)
        published = time.monotonic() - t0
        log(f"  backfill: {result.stats.acked:,} rows published in {published:.1f} s")
        drained = None
        caught_up: dict[str, float] = {}  # role -> seconds until its lag was 0 for good
        deadline = t0 + 900
        admin = admin_client(s)  # one client for every sample: the broker is busy enough
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs.values()), "a worker died in the backfill"
            lags = observe(s, groups, admin=admin)
            for role, g in zip(("staging", "features", "sink"), lags, strict=True):
                if not (g.partitions and g.lag == 0):
                    caught_up.pop(role, None)
                else:
                    caught_up.setdefault(role, round(time.monotonic() - t0, 1))
            if all(g.partitions and g.lag == 0 for g in lags):
                drained = time.monotonic() - t0
                break
            time.sleep(1.0)  # a sample costs the busy machine ~50 ms of CPU
        counts = asyncio.run(_counts(s))
    return {
        "rows": result.stats.acked,
        "games": games,
        "publish_s": round(published, 1),
        "drained_s": None if drained is None else round(drained, 1),
        "rows_per_s": None if not drained else round(result.stats.acked / drained),
        "caught_up_s": caught_up,
        **counts,
    }


def backfill_table(r: dict[str, Any]) -> list[str]:
    drained = "not drained within 15 min" if r["drained_s"] is None else f"{r['drained_s']} s"
    return [
        f"{r['rows']:,} rows ({r['games']:,} games): published in {r['publish_s']} s, every"
        f" zone drained after {drained} ({r['rows_per_s'] or 0:,} rows/s end to end)",
        "each worker done (lag 0 from then on) after: "
        + ", ".join(f"{role} {sec} s" for role, sec in r.get("caught_up_s", {}).items()),
        "in Postgres: "
        + ", ".join(
            f"{k} {r[k]:,}"
            for k in (
                "raw rows",
                "staged lines",
                "velocity rows",
                "consensus rows",
                "steam moves",
                "dead letters",
            )
        ),
    ]
