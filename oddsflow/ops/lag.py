"""``oddsflow lag``: how far each consumer group is behind, in records and in seconds, and why.

Per group, topic and partition: the committed offset, the end offset (high watermark), the lag in
records, and the lag in seconds — now minus the timestamp of the oldest record the group has not
consumed (the record at its committed offset, fetched). Each sample is kept in
``<operational>.lag_history`` so a status can be judged over a sliding window of observations
(:mod:`oddsflow.ops.burrow`) even across separate runs of the command.

Kafka's committed offsets are what every role publishes (the sink commits to Kafka after its
database transaction, for exactly this), so one method covers the three roles.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import (
    Consumer,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from core.argtypes import non_negative_int, positive_float
from core.kafka_config import client_config
from core.offsets import (
    TP,
    KafkaUnavailable,
    admin_client,
    committed_offsets,
    end_offsets,
    result_of,
    retried,
    start_offsets,
)
from core.settings import Settings
from oddsflow.console import render, table
from oddsflow.jsonout import emit, iso, iso_from_unix, plain
from oddsflow.ops.burrow import Observation, Rules, Status, group_status
from oddsflow.worker import ROLES

HISTORY_KEEP_DAYS = 7
log = logging.getLogger("oddsflow.lag")


@dataclass
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed this partition
    end: int
    lag: int  # records not yet consumed
    lag_seconds: float | None  # age of the oldest unconsumed record; 0 when caught up
    status: Status = Status.OK


@dataclass
class GroupLag:
    group: str
    state: str  # the broker's view: STABLE, EMPTY, DEAD, PREPARING_REBALANCE...
    members: int
    observed_at: float  # unix seconds
    partitions: list[PartitionLag] = field(default_factory=list)
    status: Status = Status.OK
    member_ids: list[str] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def lag_seconds(self) -> float:
        return max((p.lag_seconds or 0.0 for p in self.partitions), default=0.0)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lag"] = self.lag
        d["lag_seconds"] = round(self.lag_seconds, 3)
        d["observed_at"] = iso_from_unix(self.observed_at)
        return plain(d)


class GroupNotFound(LookupError):
    """Groups asked for by name that the broker does not know (no members, no offsets)."""

    def __init__(self, groups: Sequence[str]) -> None:
        self.groups = list(groups)
        names = ", ".join(self.groups)
        super().__init__(
            f"consumer group {names} does not exist"
            if len(self.groups) == 1
            else f"consumer groups {names} do not exist"
        )


def group_prefix(settings: Settings) -> str:
    """Groups of this deployment: ``<topic prefix>oddsflow-<role>``."""
    return f"{settings.kafka.topic_prefix}oddsflow-"


def full_group_name(settings: Settings, group: str) -> str:
    """``sink`` or ``oddsflow-sink`` mean this deployment's sink group; other names (subscriber
    groups) get the topic prefix like :func:`oddsflow.ops.subscribe.subscribe` gives them."""
    role = group.removeprefix("oddsflow-")
    if role in ROLES:
        return f"{group_prefix(settings)}{role}"
    prefix = settings.kafka.topic_prefix
    return group if group.startswith(prefix) else prefix + group


def list_groups(settings: Settings, admin: AdminClient, timeout: float = 10.0) -> list[str]:
    """This deployment's consumer groups known to the broker."""
    listing = retried(
        lambda: result_of(
            admin.list_consumer_groups(request_timeout=timeout), "listing consumer groups", timeout
        )
    )
    prefix = group_prefix(settings)
    return sorted(g.group_id for g in listing.valid if g.group_id.startswith(prefix))


@dataclass(frozen=True)
class GroupInfo:
    state: str
    members: list[str]  # client id @ host of each live member
    assigned: set[TP]


def describe(
    admin: AdminClient, groups: Sequence[str], timeout: float = 10.0
) -> dict[str, GroupInfo]:
    """Per group: its state, live members and the partitions assigned to them."""
    if not groups:
        return {}
    out = {}

    def call() -> dict[str, Any]:
        futures = admin.describe_consumer_groups(list(groups), request_timeout=timeout)
        return {g: result_of(f, f"describing group {g}", timeout) for g, f in futures.items()}

    for group, d in retried(call).items():
        assigned = {
            (tp.topic, tp.partition)
            for m in d.members
            if m.assignment is not None
            for tp in m.assignment.topic_partitions
        }
        members = sorted(f"{m.client_id}@{m.host.lstrip('/')}" for m in d.members)
        out[group] = GroupInfo(d.state.name, members, assigned)
    return out


def oldest_unconsumed(
    settings: Settings, positions: dict[TP, int], timeout: float = 5.0
) -> dict[TP, float | None]:
    """Timestamp (unix s) of the first record at or after each position; None if there is none.

    Fetched with a throw-away consumer that never joins or commits to any group. A partition
    whose only entries past the position are transaction markers reports None: nothing to do.
    """
    if not positions:
        return {}
    consumer = Consumer(
        client_config(
            settings,
            **{
                "group.id": f"oddsflow-lag-probe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_uncommitted",
                "log_level": 0,
                "fetch.max.bytes": 1 << 20,
                "max.partition.fetch.bytes": 64 << 10,
            },
        )
    )
    found: dict[TP, float | None] = {}
    try:
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in positions.items()])
        deadline = time.monotonic() + timeout
        while len(found) < len(positions) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                tp = (msg.topic(), msg.partition())
                if tp in found or tp not in positions:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        found[tp] = None
                    continue
                _kind, ts = msg.timestamp()
                found[tp] = ts / 1000.0 if ts > 0 else None
                consumer.pause([TopicPartition(*tp)])
    finally:
        consumer.close()
    return found


def rates_between(before: GroupLag, after: GroupLag) -> tuple[float, float]:
    """(consumed, arrived) records per second between two samples of one group: committed
    offsets advanced, and end offsets of its input partitions advanced."""
    dt = max(after.observed_at - before.observed_at, 1e-6)
    prev = {(p.topic, p.partition): p for p in before.partitions}
    consumed = arrived = 0
    for p in after.partitions:
        q = prev.get((p.topic, p.partition))
        if q is None:
            continue
        if p.committed is not None and q.committed is not None:
            consumed += max(p.committed - q.committed, 0)
        arrived += max(p.end - q.end, 0)
    return consumed / dt, arrived / dt


def is_internal_state_topic(topic: str) -> bool:
    """Faust assigns its tables' changelogs to the group for recovery but never commits them:
    they are state, not input, and counting them as lag would report a false STALL."""
    return topic.endswith("-changelog") or topic.endswith("__assignor-__leader")


def observe(
    settings: Settings,
    groups: Sequence[str] | None = None,
    timeout: float = 10.0,
    must_exist: bool = False,
    admin: AdminClient | None = None,
) -> list[GroupLag]:
    """One sample of every group (statuses not yet judged: see :class:`LagMonitor`).

    ``must_exist``: a named group the broker does not know raises :class:`GroupNotFound` (a user's
    typo); without it, such a group is reported empty (a role that has not run yet). ``admin``:
    a client to reuse when sampling often (a new one connects to the broker every time)."""
    admin = admin or admin_client(settings)
    names = (
        [full_group_name(settings, g) for g in groups]
        if groups
        else list_groups(settings, admin, timeout)
    )
    described = describe(admin, names, timeout)
    committed = {g: committed_offsets(admin, g, timeout) for g in names}
    if groups and must_exist:  # a typo is not a healthy group with no lag
        missing = [
            g for g in names if described[g].state in ("DEAD", "UNKNOWN") and not committed[g]
        ]
        if missing:
            raise GroupNotFound(missing)
    parts: set[TP] = set()
    for g in names:
        parts |= set(committed[g]) | described[g].assigned
    ends = end_offsets(admin, parts, timeout)
    starts = start_offsets(admin, parts, timeout)
    now = time.time()
    out: list[GroupLag] = []
    positions: dict[tuple[str, TP], int] = {}
    for g in names:
        info = described[g]
        gl = GroupLag(g, info.state, len(info.members), now, member_ids=info.members)
        for tp in sorted(set(committed[g]) | info.assigned):
            if is_internal_state_topic(tp[0]):
                continue
            end = ends.get(tp, 0)
            c = committed[g].get(tp)
            position = max(c if c is not None else starts.get(tp, 0), starts.get(tp, 0))
            lag = max(end - position, 0)
            gl.partitions.append(PartitionLag(tp[0], tp[1], c, end, lag, 0.0 if not lag else None))
            if lag:
                positions[(g, tp)] = position
        out.append(gl)
    # one probe per distinct (partition, position): groups at the same place share the fetch
    by_tp: dict[TP, set[int]] = {}
    for (_, tp), pos in positions.items():
        by_tp.setdefault(tp, set()).add(pos)
    stamps: dict[tuple[TP, int], float | None] = {}
    while by_tp:
        batch = {tp: poss.pop() for tp, poss in by_tp.items()}
        by_tp = {tp: poss for tp, poss in by_tp.items() if poss}
        for tp, ts in oldest_unconsumed(settings, batch).items():
            stamps[(tp, batch[tp])] = ts
    for gl in out:
        for p in gl.partitions:
            tp = (p.topic, p.partition)
            if (gl.group, tp) not in positions:
                continue
            key = (tp, positions[(gl.group, tp)])
            if key in stamps and stamps[key] is None:
                p.lag, p.lag_seconds = 0, 0.0  # only transaction markers past the position
            elif stamps.get(key) is not None:
                p.lag_seconds = max(now - stamps[key], 0.0)  # type: ignore[operator]
    return out


# -- history in the operational schema ------------------------------------------------------


def history_table(settings: Settings) -> str:
    return f"{settings.pipeline.zones.operational}.lag_history"


async def ensure_history_table(conn: asyncpg.Connection, settings: Settings) -> None:
    """Create the history table if missing (idempotent; safe when several monitors start)."""
    ops = settings.pipeline.zones.operational
    table = history_table(settings)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {ops};"
            f"CREATE TABLE IF NOT EXISTS {table} ("
            " observed_at timestamptz NOT NULL, consumer_group text NOT NULL,"
            " topic text NOT NULL, kafka_partition integer NOT NULL,"
            " committed_offset bigint, end_offset bigint NOT NULL, lag bigint NOT NULL,"
            " lag_seconds double precision, members integer NOT NULL,"
            " status text NOT NULL, group_status text NOT NULL,"
            " PRIMARY KEY (consumer_group, topic, kafka_partition, observed_at));"
            f"CREATE INDEX IF NOT EXISTS lag_history_observed_at ON {table} (observed_at)"
        )


async def write_history(
    conn: asyncpg.Connection, settings: Settings, groups: list[GroupLag]
) -> int:
    """Append one sample; drop history older than a week. Returns rows written."""
    table = history_table(settings)
    rows = [
        (
            datetime.fromtimestamp(g.observed_at, UTC),
            g.group,
            p.topic,
            p.partition,
            p.committed,
            p.end,
            p.lag,
            p.lag_seconds,
            g.members,
            p.status.value,
            g.status.value,
        )
        for g in groups
        for p in g.partitions
    ]
    async with conn.transaction():
        await conn.executemany(
            f"INSERT INTO {table} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
            " ON CONFLICT DO NOTHING",
            rows,
        )
        await conn.execute(
            f"DELETE FROM {table} WHERE observed_at < now() - make_interval(days => $1)",
            HISTORY_KEEP_DAYS,
        )
    return len(rows)


async def read_history(
    conn: asyncpg.Connection, settings: Settings, groups: Sequence[str], seconds: float
) -> dict[str, dict[TP, list[Observation]]]:
    """The last ``seconds`` of observations per group and partition, oldest first."""
    rows = await conn.fetch(
        f"SELECT observed_at, consumer_group, topic, kafka_partition, committed_offset,"
        f" end_offset, lag FROM {history_table(settings)}"
        " WHERE consumer_group = ANY($1::text[])"
        " AND observed_at > now() - make_interval(secs => $2)"
        " ORDER BY observed_at",
        list(groups),
        float(seconds),
    )
    out: dict[str, dict[TP, list[Observation]]] = {}
    for r in rows:
        out.setdefault(r["consumer_group"], {}).setdefault(
            (r["topic"], r["kafka_partition"]), []
        ).append(
            Observation(
                r["observed_at"].timestamp(), r["committed_offset"], r["end_offset"], r["lag"]
            )
        )
    return out


class LagMonitor:
    """Samples lag, keeps the sliding window (seeded from the history table), judges status.

    ``history=False`` keeps the window in memory only; a database that does not answer is
    reported once on ``warnings`` and the monitor carries on without it.
    """

    def __init__(
        self,
        settings: Settings,
        groups: Sequence[str] | None = None,
        rules: Rules | None = None,
        history: bool = True,
        must_exist: bool = False,
    ) -> None:
        self.settings = settings
        self.groups = list(groups) if groups else None
        self.must_exist = must_exist
        self.rules = rules or Rules()
        self.history = history
        self.windows: dict[str, dict[TP, list[Observation]]] = {}
        self.warnings: list[str] = []
        self._seeded = False
        self._table_ready = False
        self._admin: AdminClient | None = None  # made on the first sample, then reused

    async def _db(self) -> asyncpg.Connection | None:
        if not self.history:
            return None
        try:
            conn = await asyncpg.connect(self.settings.postgres.dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.history = False
            self.warnings.append(f"lag history disabled: database unavailable ({exc})")
            return None
        if not self._table_ready:
            await ensure_history_table(conn, self.settings)
            self._table_ready = True
        return conn

    async def sample(self) -> list[GroupLag]:
        """Observe once, judge each group over its window, and record the sample."""
        if self._admin is None:
            self._admin = admin_client(self.settings)
        groups = await asyncio.to_thread(
            observe, self.settings, self.groups, must_exist=self.must_exist, admin=self._admin
        )
        conn = await self._db()
        try:
            if conn is not None and not self._seeded:
                seeded = await read_history(
                    conn, self.settings, [g.group for g in groups], self.rules.window_seconds
                )
                for g, parts in seeded.items():
                    self.windows[g] = parts
            self._seeded = True
            for g in groups:
                window = self.windows.setdefault(g.group, {})
                for p in g.partitions:
                    obs = window.setdefault((p.topic, p.partition), [])
                    obs.append(Observation(g.observed_at, p.committed, p.end, p.lag))
                    keep = g.observed_at - self.rules.window_seconds
                    obs[:] = [o for o in obs if o.at >= keep]
                current = {(p.topic, p.partition) for p in g.partitions}
                parts = {tp: o for tp, o in window.items() if tp in current}
                g.status, each = group_status(parts, g.observed_at, g.members, self.rules)
                for p in g.partitions:
                    p.status = each[(p.topic, p.partition)]
            if conn is not None:
                await write_history(conn, self.settings, groups)
        finally:
            if conn is not None:
                await conn.close()
        return groups


# -- output ---------------------------------------------------------------------------------


def _fmt_seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f}"


def format_lag(groups: Sequence[GroupLag], all_partitions: bool = False) -> str:
    """Tables for people: one header line per group, then its partitions that have lag."""
    if not groups:
        return "no consumer groups found"
    lines: list[str] = []
    columns = ("topic", "part", "committed", "end", "lag", "lag s", "status")
    for g in groups:
        lines.append(
            f"{g.group}  status {g.status.value}  members {g.members} ({g.state.lower()})"
            f"  lag {g.lag} records, {g.lag_seconds:.1f} s"
        )
        shown = [p for p in g.partitions if all_partitions or p.lag or p.status != Status.OK]
        if shown:
            rows = [(p.topic, p.partition, p.committed, p.end, p.lag,
                     _fmt_seconds(p.lag_seconds), p.status.value) for p in shown]  # fmt: skip
            text = render(table(columns, rows, right=columns[1:6]))
            lines.extend("  " + line for line in text.splitlines())
        elif g.partitions:
            lines.append(f"  {len(g.partitions)} partitions, all caught up")
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------


def add_lag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--group",
        action="append",
        help="consumer group (repeatable; 'sink' or 'oddsflow-sink' or the full name);"
        " default: every oddsflow group",
    )
    parser.add_argument("--watch", action="store_true", help="sample every --interval seconds")
    parser.add_argument(
        "--interval", type=positive_float, default=5.0, help="seconds between samples"
    )
    parser.add_argument("--json", action="store_true", help="JSON (one document per sample)")
    parser.add_argument("--all", action="store_true", help="list caught-up partitions too")
    parser.add_argument(
        "--window", type=positive_float, default=Rules.window_seconds, help="status window, seconds"
    )
    parser.add_argument(
        "--stop-after",
        type=positive_float,
        default=Rules.stop_after,
        help="seconds without offset progress (with lag) before STALL becomes STOP",
    )
    parser.add_argument(
        "--no-history", action="store_true", help="do not read or write the lag_history table"
    )
    parser.add_argument(
        "--count",
        type=non_negative_int,
        default=0,
        help="with --watch: stop after this many samples",
    )


async def _run_lag(settings: Settings, args: argparse.Namespace) -> int:
    rules = Rules(window_seconds=args.window, stop_after=args.stop_after)
    monitor = LagMonitor(settings, args.group, rules, history=not args.no_history, must_exist=True)
    n = 0
    while True:
        groups = await monitor.sample()
        for w in monitor.warnings:
            print(w, file=sys.stderr)
        monitor.warnings.clear()
        if args.json:
            emit([g.to_json() for g in groups])
        else:
            if args.watch:
                stamp = iso(datetime.now(UTC))
                print(f"--- {stamp}", flush=True)
            print(format_lag(groups, args.all), flush=True)
        n += 1
        if not args.watch or (args.count and n >= args.count):
            return 0
        await asyncio.sleep(args.interval)


def run_lag(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow lag``: 0 when the broker answered, 1 (one line on stderr) when it did not."""
    try:
        return asyncio.run(_run_lag(settings, args))
    except KafkaUnavailable as exc:
        print(f"oddsflow lag: Kafka at {settings.kafka.bootstrap_servers}: {exc}", file=sys.stderr)
        return 1
    except GroupNotFound as exc:
        known = ", ".join(list_groups(settings, admin_client(settings))) or "none"
        print(f"oddsflow lag: {exc} (this deployment's groups: {known})", file=sys.stderr)
        return 1
