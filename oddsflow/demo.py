"""``make demo``: start everything, run the whole pipeline on built-in data, say what it did.

Built-in data is the market simulator (deterministic for the configured seed). Workers run as
real processes with their real consumer groups — those ``[pipeline] mode`` runs (raw_only: the
sink alone; staging_only: staging and sink; full: all three); the demo watches Postgres until the
rows stop changing (or the time is up), stops the workers and prints a summary. Services stay up.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from core.admin import create_topics
from core.settings import Settings
from oddsflow import services
from oddsflow.processes import check_workers, start_workers, stop_workers
from oddsflow.status import (
    count_rows,
    dead_letters_by_reason,
    largest_moves,
    table_counts,
    topic_counts,
)
from oddsflow.worker import mode_roles
from producers.collect import publish_simulation, simulator_from
from producers.simulator import Simulator
from sinks.migrate import migrate


async def _previous_runs(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        ops = settings.pipeline.zones.operational
        return await conn.fetchval(
            f"SELECT count(*) FROM {ops}.pipeline_runs WHERE command = 'demo'"
        )
    finally:
        await conn.close()


async def _watch(
    settings: Settings,
    seconds: float,
    started: float,
    procs: dict,
    log_dir: Path,
    expect_raw: int,
) -> dict[str, int]:
    """Print progress every few seconds; return once this run's rows are in and stop changing."""
    z = settings.pipeline.zones
    raw_table = f"{z.raw}.odds_envelopes"
    roles = tuple(procs)
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        last: dict[str, int] = {}
        stable_since = time.monotonic()
        while True:
            check_workers(procs, log_dir)
            counts = await table_counts(settings, conn)
            shown = [("raw", f"{z.raw}.odds_envelopes", 6)]
            if "staging" in roles:
                shown.append(("staged lines", f"{z.staging}.odds_lines", 6))
            if "features" in roles:
                shown.append(("velocity rows", f"{z.curated}.line_velocity", 6))
            shown.append(("dead letters", f"{z.operational}.dead_letters", 4))
            progress = " | ".join(f"{label} {counts[table]:>{w}}" for label, table, w in shown)
            print(f"  [{time.monotonic() - started:5.0f}s] {progress}", flush=True)
            if counts != last:
                last, stable_since = counts, time.monotonic()
            elif time.monotonic() - stable_since > 8 and counts[raw_table] >= expect_raw:
                return counts
            if time.monotonic() - started > seconds:
                return counts
            await asyncio.sleep(3)
    finally:
        await conn.close()


async def _summary(settings: Settings, run_id: str, started_at: datetime, info: dict) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        counts = await table_counts(settings, conn)
        print("\nRows per table:")
        for table, n in counts.items():
            print(f"  {table:34} {n:>8}")
        moves = await largest_moves(settings, conn)
        if moves:
            print("\nLargest line moves (analytics.line_velocity):")
        for r in moves:
            before = "—" if r["value_before"] is None else f"{r['value_before']:+.1f}"
            print(
                f"  {r['game_id']:26} {r['market']:9} {r['side']:5} {r['book']:11}"
                f" {r['window_minutes']:>3}m {before:>7} → {r['value']:+7.1f} {r['unit']:6}"
                f" change {r['change']:+6.1f} ({r['velocity']:+.2f}/min)"
                f" at {r['event_time']:%H:%M:%S}"
            )
        print("\nDead letters by reason:")
        rows = await dead_letters_by_reason(settings, conn)
        for r in rows:
            print(f"  {r['stage']:8} {r['error_class']:20} {r['n']:>6}  e.g. {r['example'][:70]}")
        if not rows:
            print("  none")
        ops = settings.pipeline.zones.operational
        await conn.execute(
            f"INSERT INTO {ops}.pipeline_runs (run_id, command, started_at, finished_at, status,"
            " summary) VALUES ($1, 'demo', $2, now(), 'ok', $3)",
            run_id, started_at, json.dumps({"rows": counts, **info}),
        )  # fmt: skip
        print(f"\nThis run is recorded in {ops}.pipeline_runs as {run_id}.")
    finally:
        await conn.close()


def run_demo(settings: Settings, seconds: float = 60.0) -> int:
    started = time.monotonic()
    started_at = datetime.now(UTC)
    run_id = f"demo-{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    print("1/5 Starting local Kafka and Postgres...", flush=True)
    for line in services.up(settings):
        print("  " + line)
    print("2/5 Creating topics and tables...", flush=True)
    create_topics(settings)
    applied = asyncio.run(migrate(settings))
    print(f"  topics ready; migrations applied: {', '.join(applied) or 'none (up to date)'}")
    roles = mode_roles(settings)  # [pipeline] mode: raw_only runs the sink alone
    mode = settings.pipeline.mode.value
    print(f"3/5 Starting the workers ({', '.join(roles)}; pipeline.mode {mode})...", flush=True)
    log_dir = settings.state_dir / "logs"
    procs = start_workers(settings, log_dir, roles=roles)
    try:
        # Each demo run simulates a new market (seed + previous runs), deterministic per run.
        runs = asyncio.run(_previous_runs(settings))
        sim = simulator_from(settings)
        sim = Simulator(
            seed=sim.seed + runs, games=sim.games, books=sim.books, ticks=sim.ticks,
            tick_seconds=sim.tick_seconds,
        )  # fmt: skip
        print(
            f"4/5 Simulating {sim.games} games x {sim.books} books x 3 markets, {sim.ticks} ticks"
            f" (seed {sim.seed}) into raw.odds.simulator...",
            flush=True,
        )
        before = asyncio.run(count_rows(settings))
        pub = publish_simulation(settings, sim)
        print("  following the records through the zones (Postgres row counts):", flush=True)
        expect_raw = before[f"{settings.pipeline.zones.raw}.odds_envelopes"] + pub.stats.acked
        asyncio.run(_watch(settings, seconds, started, procs, log_dir, expect_raw))
    finally:
        print("5/5 Stopping the workers...", flush=True)
        stop_workers(procs)
    print(
        "\nOffsets per topic (records; curated topics also count one commit marker per"
        " transaction and partition):"
    )
    for topic, n in topic_counts(settings).items():
        if n:
            print(f"  {topic:32} {n:>8}")
    asyncio.run(_summary(settings, run_id, started_at, {"published": pub.stats.acked}))
    print(
        f"\nDone in {time.monotonic() - started:.0f}s. Kafka and Postgres are still running for"
        f" you to explore (psql {settings.postgres.display_dsn}); worker logs are in {log_dir}."
        "\nStop everything with: make down"
    )
    return 0
