"""``oddsflow pipeline health`` and ``oddsflow pipeline status``.

Health answers one question for a probe or a person — can the pipeline do its job right now? —
with an exit code and one line saying why not: the broker answers, the database answers and is
migrated, every worker role has a live member, no group is STOP or STALL, and dead letters stay
under the quality threshold. A broker that does not answer ends the check at once (nothing else
can be judged without it).

Status is the operator's overview per stage: live workers, lag (records, seconds, Burrow status),
throughput measured over a short interval, and the stage's last error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import KafkaException

from core.argtypes import positive_float
from core.offsets import KafkaUnavailable, admin_client
from core.settings import Settings
from oddsflow.console import render, table
from oddsflow.errors import shorten
from oddsflow.jsonout import emit, iso
from oddsflow.ops.burrow import Rules, Status
from oddsflow.ops.lag import LagMonitor, describe, full_group_name, rates_between
from oddsflow.worker import ROLES, mode_roles

UNHEALTHY_LAG = (Status.STOP, Status.STALL)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def verdict(self) -> str:
        """The one line: what is wrong (all of it), or that nothing is."""
        bad = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if bad:
            return "UNHEALTHY: " + "; ".join(bad)
        return "HEALTHY: " + "; ".join(f"{c.name} {c.detail}" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.ok,
            "verdict": self.verdict(),
            "checks": [asdict(c) for c in self.checks],
        }


def check_broker(settings: Settings, timeout: float) -> Check:
    """The broker answers a metadata request within ``timeout``."""
    where = settings.kafka.bootstrap_servers
    try:
        md = admin_client(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        reason = err.str() if hasattr(err, "str") else str(err)
        return Check(
            "broker", False, f"Kafka at {where} did not answer within {timeout:g}s ({reason})"
        )
    return Check("broker", True, f"Kafka at {where} ({len(md.brokers)} broker(s))")


async def check_database(
    settings: Settings, timeout: float
) -> tuple[Check, asyncpg.Connection | None]:
    """The database answers and has the migrations applied; returns the open connection."""
    pg = settings.postgres
    where = "DATABASE_URL" if pg.url else f"Postgres at {pg.host}:{pg.port}/{pg.database}"
    try:
        conn = await asyncpg.connect(pg.dsn, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return Check("database", False, f"{where} unreachable ({exc})"), None
    ops = settings.pipeline.zones.operational
    try:
        version = await conn.fetchval(f"SELECT max(version) FROM {ops}.schema_migrations")
    except asyncpg.UndefinedTableError:
        return Check("database", False, f"{where}: not migrated (run oddsflow db migrate)"), conn
    return Check(
        "database", True, f"{where} (migration {version:03d})", {"migration": version}
    ), conn


def check_workers(settings: Settings, roles: tuple[str, ...], timeout: float) -> Check:
    """Every expected role has at least one live member in its consumer group."""
    groups = {r: full_group_name(settings, r) for r in roles}
    info = describe(admin_client(settings), list(groups.values()), timeout)
    members = {r: len(info[g].members) for r, g in groups.items()}
    missing = [r for r, n in members.items() if n == 0]
    summary = ", ".join(f"{r} {n}" for r, n in members.items())
    if roles == mode_roles(settings) and len(roles) < len(ROLES):
        summary += f" (pipeline.mode {settings.pipeline.mode.value})"
    if missing:
        return Check(
            "workers",
            False,
            f"no live {'/'.join(missing)} worker ({summary})",
            {"members": members},
        )
    return Check("workers", True, summary, {"members": members})


async def check_lag(settings: Settings, roles: tuple[str, ...], rules: Rules) -> Check:
    """No group is stopped or stalled (judged over the lag history window)."""
    groups = await LagMonitor(settings, list(roles), rules).sample()
    status = {g.group: g.status.value for g in groups}
    bad = [g for g in groups if g.status in UNHEALTHY_LAG]
    summary = ", ".join(f"{g.group} {g.status.value} ({g.lag} behind)" for g in groups)
    if bad:
        detail = ", ".join(
            f"{g.group} {g.status.value} ({g.lag} behind, {g.lag_seconds:.0f}s)" for g in bad
        )
        return Check("lag", False, detail, {"status": status})
    return Check("lag", True, summary or "no groups", {"status": status})


async def check_dead_letters(
    settings: Settings, conn: asyncpg.Connection, window_minutes: float
) -> Check:
    """Dead letters vs rows promoted to staging over the window, against the quality threshold.

    The share allowed is ``1 - pipeline.quality_threshold``; the staging quality reports' pass
    rate (when the stage publishes them) must also reach the threshold.
    """
    z = settings.pipeline.zones
    since = f"now() - make_interval(secs => {float(window_minutes) * 60})"
    dead = await conn.fetchval(
        f"SELECT count(*) FROM {z.operational}.dead_letters WHERE loaded_at > {since}"
    )
    promoted = await conn.fetchval(
        f"SELECT (SELECT count(*) FROM {z.staging}.odds_lines WHERE loaded_at > {since})"
        f" + (SELECT count(*) FROM {z.staging}.betting_splits WHERE loaded_at > {since})"
    )
    pass_rate = await conn.fetchval(
        f"SELECT sum(promoted + deduplicated)::float8 / nullif(sum(records_in), 0)"
        f" FROM {z.operational}.quality WHERE emitted_at > {since}"
    )
    threshold = settings.pipeline.quality_threshold
    share = dead / (dead + promoted) if dead + promoted else 0.0
    per_min = dead / window_minutes
    data = {"dead_letters": dead, "promoted": promoted, "share": share, "pass_rate": pass_rate}
    detail = f"{per_min:.1f}/min over {window_minutes:g} min ({share:.1%} of records)"
    if not settings.pipeline.processing.quality_gates:  # reported, never judged
        return Check("dead letters", True, detail + " (quality gates off)", data)
    if share > 1 - threshold:
        return Check("dead letters", False, f"{detail} > {1 - threshold:.0%} allowed", data)
    if pass_rate is not None and pass_rate < threshold:
        return Check(
            "dead letters", False, f"quality pass rate {pass_rate:.1%} < {threshold:.0%}", data
        )
    return Check("dead letters", True, detail, data)


async def health(
    settings: Settings,
    roles: tuple[str, ...] | None = None,
    timeout: float = 3.0,
    window_minutes: float = 5.0,
    rules: Rules | None = None,
) -> HealthReport:
    """Every check; a broker that does not answer is the only one reported (fast fail).

    ``roles``: the worker roles expected live; default, those ``[pipeline] mode`` runs.
    """
    roles = mode_roles(settings) if roles is None else roles
    broker = await asyncio.to_thread(check_broker, settings, timeout)
    if not broker.ok:
        return HealthReport([broker])
    checks = [broker]
    db, conn = await check_database(settings, timeout)
    checks.append(db)
    try:
        try:
            checks.append(await asyncio.to_thread(check_workers, settings, roles, timeout * 3))
            checks.append(await check_lag(settings, roles, rules or Rules()))
        except KafkaUnavailable as exc:
            checks.append(Check("broker", False, f"stopped answering: {exc}"))
        if conn is not None and db.ok:
            checks.append(await check_dead_letters(settings, conn, window_minutes))
    finally:
        if conn is not None:
            await conn.close()
    return HealthReport(checks)


# -- pipeline status ------------------------------------------------------------------------


@dataclass
class StageStatus:
    stage: str
    group: str
    workers: list[str]
    lag: int
    lag_seconds: float
    status: str
    consumed_per_s: float  # committed-offset deltas over the interval
    arrived_per_s: float  # end-offset deltas of the stage's input partitions
    last_error: dict[str, Any] | None


async def last_errors(settings: Settings, conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Per stage, the newest dead letter or error event."""
    ops = settings.pipeline.zones.operational
    out: dict[str, dict[str, Any]] = {}
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (stage) stage, failed_at AS at, error_class, reason"
        f" FROM {ops}.dead_letters ORDER BY stage, failed_at DESC"
    )
    for r in rows:
        out[r["stage"]] = {
            "at": iso(r["at"]),
            "source": "dead_letters",
            "error": f"{r['error_class']}: {r['reason']}",
        }
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (stage) stage, at, kind, details FROM {ops}.pipeline_events"
        " WHERE kind ILIKE '%error%' OR kind ILIKE '%fail%' ORDER BY stage, at DESC"
    )
    for r in rows:
        at = iso(r["at"])
        if r["stage"] not in out or out[r["stage"]]["at"] < at:
            details = r["details"] if isinstance(r["details"], str) else json.dumps(r["details"])
            out[r["stage"]] = {
                "at": at,
                "source": "pipeline_events",
                "error": f"{r['kind']}: {details}",
            }
    return out


async def pipeline_status(
    settings: Settings, interval: float = 2.0, rules: Rules | None = None
) -> list[StageStatus]:
    """Workers, lag, throughput over ``interval`` seconds and last error, per stage that
    ``[pipeline] mode`` runs."""
    roles = mode_roles(settings)
    monitor = LagMonitor(settings, list(roles), rules or Rules())
    first = {g.group: g for g in await monitor.sample()}
    await asyncio.sleep(interval)  # throughput needs two samples some time apart
    second = await monitor.sample()
    errors: dict[str, dict[str, Any]] = {}
    try:
        conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        conn = None
    if conn is not None:
        try:
            errors = await last_errors(settings, conn)
        finally:
            await conn.close()
    out = []
    for role, g in zip(roles, second, strict=True):
        consumed, arrived = rates_between(first[g.group], g)
        out.append(
            StageStatus(role, g.group, g.member_ids, g.lag, round(g.lag_seconds, 3), g.status.value,
                        round(consumed, 1), round(arrived, 1), errors.get(role))
        )  # fmt: skip
    return out


def format_stage_status(stages: list[StageStatus]) -> str:
    columns = ("stage", "workers", "lag", "lag s", "status", "consumed/s", "arrived/s",
               "last error")  # fmt: skip
    rows = [
        (s.stage, len(s.workers), s.lag, f"{s.lag_seconds:.1f}", s.status,
         f"{s.consumed_per_s:.1f}", f"{s.arrived_per_s:.1f}",
         "-" if s.last_error is None
         else shorten(f"{s.last_error['at']} {s.last_error['error']}", 90))
        for s in stages
    ]  # fmt: skip
    right = ("workers", "lag", "lag s", "consumed/s", "arrived/s")
    return render(table(columns, rows, right=right))


# -- command line ---------------------------------------------------------------------------


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--timeout", type=positive_float, default=3.0, help="seconds per service check"
    )
    parser.add_argument(
        "--roles", nargs="+", choices=ROLES, help="worker roles expected live (default: the mode's)"
    )
    parser.add_argument(
        "--window", type=positive_float, default=5.0, help="minutes of dead letters to judge"
    )


def run_health(settings: Settings, args: argparse.Namespace) -> int:
    """0 healthy, 1 unhealthy: the first line says why; details follow unless the broker is down."""
    roles = tuple(args.roles) if args.roles else None
    report = asyncio.run(health(settings, roles, timeout=args.timeout, window_minutes=args.window))
    if args.json:
        emit(report.to_json())
    else:
        print(report.verdict())
        if len(report.checks) > 1:
            for c in report.checks:
                print(f"  {'ok ' if c.ok else 'BAD'} {c.name:<13} {c.detail}")
    return 0 if report.ok else 1


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=2.0,
        help="seconds between the two throughput samples",
    )


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow pipeline status``; 1 with one line when the broker does not answer."""
    broker = check_broker(settings, 3.0)
    if not broker.ok:
        print(f"oddsflow pipeline status: {broker.detail}", file=sys.stderr)
        return 1
    try:
        stages = asyncio.run(pipeline_status(settings, args.interval))
    except KafkaUnavailable as exc:
        print(f"oddsflow pipeline status: {exc}", file=sys.stderr)
        return 1
    mode = settings.pipeline.mode.value
    off = [r for r in ROLES if r not in mode_roles(settings)]
    if args.json:
        doc = {
            "at": datetime.now(UTC),
            "mode": mode,
            "not_run": off,
            "stages": [asdict(s) for s in stages],
        }
        emit(doc)
    else:
        print(format_stage_status(stages))
        if off:
            print(f"pipeline.mode {mode}: {', '.join(off)} not run")
    return 0
