"""``oddsflow pipeline run``: the roadmap's one-off runs, mapped onto the stream.

A zone is promoted by the workers that write it: ``raw`` by the sink (raw topics → raw_data),
``staging`` by the staging worker and the sink, ``curated`` by the feature worker and the sink,
``--full`` by all three. The run starts those workers, waits until the pipeline is quiet (every
involved group has committed offsets and nothing moved — end offsets nor commits — for a few
seconds: with transactional producers upstream a partition's last offset can be a marker no one
consumes, so "lag == 0" alone would never be reached), stops them with SIGTERM and prints what
each table gained. ``pipeline.mode`` limits what ``--full`` runs (raw_only, staging_only).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import asyncpg

from oddsflow.ops.lag import admin_client, committed_offsets, end_offsets
from oddsflow.settings import PipelineMode, Settings
from oddsflow.status import table_counts
from oddsflow.topics import CATALOG, Zone, topic_name

ZONE_ROLES = {"raw": ("sink",), "staging": ("staging", "sink"), "curated": ("features", "sink")}
MODE_ZONES = {
    PipelineMode.RAW_ONLY: ("raw",),
    PipelineMode.STAGING_ONLY: ("raw", "staging"),
    PipelineMode.FULL: ("raw", "staging", "curated"),
}


def roles_for(settings: Settings, zone: str | None) -> tuple[str, ...]:
    """Worker roles a run needs, in start order; refuses zones the configured mode excludes."""
    allowed = MODE_ZONES[settings.pipeline.mode]
    zones = allowed if zone in (None, "full") else (zone,)
    for z in zones:
        if z not in allowed:
            raise SystemExit(
                f"oddsflow: pipeline.mode is {settings.pipeline.mode.value}: the {z} zone is not "
                "run; change [pipeline] mode in config.toml or ODDSFLOW_PIPELINE__MODE"
            )
    roles: list[str] = []
    for z in zones:
        for r in ZONE_ROLES[z]:
            if r not in roles:
                roles.append(r)
    return tuple(sorted(roles, key=("staging", "features", "sink").index))


def _inputs(settings: Settings, role: str) -> list[str]:
    if role == "staging":
        zones = {Zone.RAW}
    elif role == "features":
        zones = {Zone.STAGING}
    else:
        zones = {Zone.RAW, Zone.STAGING, Zone.CURATED, Zone.OPERATIONAL}
    return [topic_name(settings, s.name) for s in CATALOG if s.zone in zones]


def _snapshot(settings: Settings, roles: tuple[str, ...]) -> tuple[dict, bool]:
    """(offsets of every involved group and input partition, every input with data committed)."""
    admin = admin_client(settings)
    md = admin.list_topics(timeout=10)
    state: dict = {}
    complete = True
    for role in roles:
        group = f"{settings.kafka.topic_prefix}oddsflow-{role}"
        tps = [
            (t, p)
            for t in _inputs(settings, role)
            if t in md.topics
            for p in md.topics[t].partitions
        ]
        ends = end_offsets(admin, tps)
        commits = committed_offsets(admin, group)
        for tp, end in ends.items():
            if end > 0 and tp not in commits:
                complete = False
        state[role] = (ends, {tp: commits.get(tp) for tp in tps})
    return state, complete


def wait_until_quiet(
    settings: Settings, roles: tuple[str, ...], quiet: float, timeout: float, check: object
) -> float:
    """Seconds until nothing moved for ``quiet`` seconds; ``check()`` raises if a worker died."""
    started = last_change = time.monotonic()
    last = None
    while True:
        check()  # type: ignore[operator]
        state, complete = _snapshot(settings, roles)
        now = time.monotonic()
        if state != last or not complete:
            last, last_change = state, now
        elif now - last_change >= quiet:
            return now - started
        if now - started > timeout:
            raise SystemExit(f"oddsflow: the pipeline did not drain within {timeout:.0f}s")
        time.sleep(1.0)


async def _counts(settings: Settings) -> dict[str, int]:
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        return await table_counts(settings, conn)
    finally:
        await conn.close()


def run_zone(
    settings: Settings, zone: str | None, quiet: float = 5.0, timeout: float = 3600
) -> int:
    from oddsflow.processes import check_workers, start_workers, stop_workers

    roles = roles_for(settings, zone)
    before = asyncio.run(_counts(settings))
    log_dir = settings.state_dir / "logs"
    print(f"pipeline run: starting {', '.join(roles)} (logs in {log_dir})", flush=True)
    procs = start_workers(settings, Path(log_dir), roles=roles)
    try:
        took = wait_until_quiet(
            settings, roles, quiet, timeout, lambda: check_workers(procs, Path(log_dir))
        )
    finally:
        stop_workers(procs)
    after = asyncio.run(_counts(settings))
    print(f"drained in {took:.0f}s; rows added per table:")
    for table, n in after.items():
        if n != before.get(table, 0):
            print(f"  {table:40} +{n - before.get(table, 0)}")
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--zone", choices=("raw", "staging", "curated"))
    g.add_argument("--full", action="store_true", help="every zone the pipeline.mode allows")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds without movement")
    parser.add_argument("--timeout", type=float, default=3600.0)


def run_run(settings: Settings, args: argparse.Namespace) -> int:
    return run_zone(settings, None if args.full else args.zone, args.quiet, args.timeout)


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="src", required=True, choices=("raw", "staging"))
    parser.add_argument("--to", dest="dst", required=True, choices=("staging", "curated"))
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=3600.0)


def run_promote(settings: Settings, args: argparse.Namespace) -> int:
    """``data promote --from raw --to staging``: the roadmap's promotion is one zone's run."""
    if (args.src, args.dst) not in (("raw", "staging"), ("staging", "curated")):
        raise SystemExit("oddsflow: promote one zone at a time: raw → staging or staging → curated")
    return run_zone(settings, args.dst, args.quiet, args.timeout)


def add_quality_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", default="staging", choices=("staging", "all"))
    parser.add_argument("--json", action="store_true")


def run_quality(settings: Settings, args: argparse.Namespace) -> int:
    """Per source, raw in = promoted + de-duplicated + dead-lettered; exit 1 when unbalanced."""
    import json

    from streams.staging.reconcile import reconcile

    rows = [r for r in reconcile(settings, "staging") if r["raw_in"]]
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        print(
            f"{'source':15} {'raw in':>8} {'promoted':>9} {'dedup':>8} {'dead':>6} {'pending':>8}"
            f" {'unexpl.':>8} | {'parts':>7} {'promoted':>9} {'dedup':>8} {'dead':>6}  balanced"
        )
        for r in rows:
            print(
                f"{r['source']:15} {r['raw_in']:>8} {r['raw_promoted']:>9}"
                f" {r['raw_deduplicated']:>8} {r['raw_dead_lettered']:>6} {r['raw_pending']:>8}"
                f" {r['raw_unexplained']:>8} | {r['parts']:>7} {r['promoted']:>9}"
                f" {r['deduplicated']:>8} {r['dead_lettered']:>6}  {r['balanced']}"
            )
        if not rows:
            print("no raw records yet")
    return 0 if all(r["balanced"] for r in rows) else 1
