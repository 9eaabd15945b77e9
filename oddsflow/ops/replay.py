"""``oddsflow replay``: reset a consumer group to a point in time so a zone is reprocessed.

Like ``kafka-consumer-groups --reset-offsets --to-datetime``, planned first and shown: for each
partition of the zone's topics, the offset of the first record at or after ``--from`` (the
broker's time index, ``offsets_for_times``; the oldest record kept when no ``--from``), and up to
where the replay is measured — the first record after ``--to``, or the end of the log.

- The default group is the sink: the zone's tables are rebuilt from its topics. The sink keeps
  its positions in ``<operational>.sink_offsets`` (that is where it resumes from, in the same
  transaction as the rows), so those are reset along with Kafka's. Rows are merged on their
  natural key, so a replay leaves the tables without duplicates.
- ``--group features`` (zone staging) recomputes the curated zone. The features worker skips
  input its state has already consumed (its state and offsets are one transaction), so its
  state changelog is deleted too: the replay starts from empty state, as a first run would.
  Any other group name (a subscriber, or a new group for a side-by-side backfill) works the
  same way as the sink's.
- Kafka only lets offsets of a group without live members be changed: a group with members is
  refused (stop its workers, or pass ``--wait-empty SECONDS`` to reset as soon as they leave).
- ``--run`` starts the group's worker, shows progress with an ETA until the group has passed
  the planned end, then stops the worker. Without it, the always-on workers reprocess when they
  next start. Records just past ``--to`` may be processed too (batches): they would be anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.argtypes import moment, non_negative_float
from core.offsets import (
    KafkaUnavailable,
    admin_client,
    committed_offsets,
    end_offsets,
    list_offsets_at,
    result_of,
    start_offsets,
)
from core.settings import Settings
from core.topics import CATALOG, topic_name
from oddsflow.console import render, table
from oddsflow.jsonout import dumps, iso, plain
from oddsflow.ops.lag import describe, full_group_name, group_prefix
from oddsflow.worker import ROLES

ZONES = ("raw", "staging", "curated", "operational")
PLAIN_PROGRESS_EVERY = 10.0  # seconds between two progress lines in a log


@dataclass
class PartitionPlan:
    topic: str
    partition: int
    current: int | None  # the group's committed offset now (None: never committed)
    target: int  # where the group is reset to
    until: int  # the replay is measured up to here (exclusive)

    @property
    def records(self) -> int:
        return max(self.until - self.target, 0)


@dataclass
class ReplayPlan:
    group: str
    zone: str
    from_time: datetime | None
    to_time: datetime | None
    members: list[str]
    role: str | None  # the pipeline role whose worker consumes for this group, if one
    partitions: list[PartitionPlan] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["records"] = self.records
        return plain(d)


def zone_topics(settings: Settings, zone: str) -> list[str]:
    if zone not in ZONES:
        raise ValueError(f"zone must be one of {', '.join(ZONES)}, not {zone!r}")
    return [topic_name(settings, s.name) for s in CATALOG if s.zone.value == zone]


def _partitions(admin: AdminClient, topics: list[str], timeout: float) -> list[tuple[str, int]]:
    try:
        md = admin.list_topics(timeout=timeout)
    except Exception as exc:
        raise KafkaUnavailable(f"listing topics: {exc}") from None
    out = []
    for t in topics:
        if t in md.topics and md.topics[t].error is None:
            out.extend((t, p) for p in sorted(md.topics[t].partitions))
    return out


def _at(admin: AdminClient, tps: list[tuple[str, int]], when: datetime, timeout: float) -> dict:
    """First offset at or after ``when``; -1 where no record is that new."""
    return list_offsets_at(
        admin, tps, OffsetSpec.for_timestamp(int(when.timestamp() * 1000)), timeout
    )


def plan_replay(
    settings: Settings,
    zone: str,
    group: str = "sink",
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    timeout: float = 10.0,
) -> ReplayPlan:
    """What a reset would do, read from the broker; changes nothing."""
    if from_time and to_time and to_time <= from_time:
        raise ValueError("--to must be after --from")
    admin = admin_client(settings)
    name = full_group_name(settings, group)
    tps = _partitions(admin, zone_topics(settings, zone), timeout)
    starts = start_offsets(admin, tps, timeout)
    ends = end_offsets(admin, tps, timeout)
    at_from = _at(admin, tps, from_time, timeout) if from_time else {}
    at_to = _at(admin, tps, to_time, timeout) if to_time else {}
    committed = committed_offsets(admin, name, timeout)
    info = describe(admin, [name], timeout)[name]
    role = name.removeprefix(group_prefix(settings))
    plan = ReplayPlan(name, zone, from_time, to_time, info.members, role if role in ROLES else None)
    for tp in tps:
        target = at_from.get(tp, starts[tp])
        target = ends[tp] if target < 0 else max(target, starts[tp])
        until = at_to.get(tp, ends[tp])
        until = ends[tp] if until < 0 else until
        plan.partitions.append(PartitionPlan(tp[0], tp[1], committed.get(tp), target, until))
    return plan


def format_plan(plan: ReplayPlan) -> str:
    span = (
        f"from {iso(plan.from_time) if plan.from_time else 'the oldest record kept'}"
        f" to {iso(plan.to_time) if plan.to_time else 'the end'}"
    )
    columns = ("topic", "part", "current", "reset to", "until", "records")
    rows = [(p.topic, p.partition, p.current, p.target, p.until, p.records)
            for p in plan.partitions]  # fmt: skip
    text = render(table(columns, rows, right=columns[1:]))
    return "\n".join(
        [f"replay {plan.zone} for group {plan.group} ({span}): {plan.records} records"]
        + ["  " + line for line in text.splitlines()]
    )


def refusal(plan: ReplayPlan) -> str:
    """Why a group with live members is not reset, and what to do instead."""
    role = plan.role
    stop = f"stop the {role} workers" if role else "stop its consumers"
    return (
        f"refusing to reset {plan.group}: it has {len(plan.members)} live member(s)"
        f" ({', '.join(plan.members)}). Kafka only moves the offsets of a group nobody consumes"
        f" for: {stop} and run again, add --wait-empty SECONDS to reset as soon as they leave,"
        " or replay into a new group (--group NAME) for a side-by-side backfill."
    )


async def wait_empty(settings: Settings, group: str, seconds: float) -> list[str]:
    """Wait up to ``seconds`` for the group to lose its members; returns those left."""
    deadline = time.monotonic() + seconds
    admin = admin_client(settings)
    while True:
        members = describe(admin, [group])[group].members
        if not members or time.monotonic() > deadline:
            return members
        await asyncio.sleep(1.0)


async def apply_plan(settings: Settings, plan: ReplayPlan, timeout: float = 10.0) -> None:
    """Reset the group's Kafka offsets and, for the sink, its stored positions."""
    admin = admin_client(settings)
    request = ConsumerGroupTopicPartitions(
        plan.group, [TopicPartition(p.topic, p.partition, p.target) for p in plan.partitions]
    )
    futures = admin.alter_consumer_group_offsets([request], request_timeout=timeout)
    res = result_of(futures[plan.group], f"resetting {plan.group}", timeout)
    failed = [tp for tp in res.topic_partitions if tp.error is not None]
    if failed:
        raise KafkaUnavailable(f"resetting {plan.group}: {failed[0].error}")
    if plan.role == "features":
        await asyncio.to_thread(_delete_features_state, settings, timeout)
    if plan.role == "sink":
        ops = settings.pipeline.zones.operational
        conn = await asyncpg.connect(settings.postgres.dsn, timeout=timeout)
        try:
            await conn.execute(
                f"INSERT INTO {ops}.sink_offsets AS o (consumer_group, topic, kafka_partition,"
                " next_offset) SELECT $1, t, p, n FROM unnest($2::text[], $3::int[],"
                " $4::bigint[]) AS u(t, p, n) ON CONFLICT (consumer_group, topic,"
                " kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,"
                " updated_at = now()",
                plan.group,
                [p.topic for p in plan.partitions],
                [p.partition for p in plan.partitions],
                [p.target for p in plan.partitions],
            )
        finally:
            await conn.close()


def _delete_features_state(settings: Settings, timeout: float) -> None:
    """Delete the features worker's state changelog and wait until the broker has forgotten it
    (the worker creates it again, empty, when it starts)."""
    from streams.features.worker import state_topic

    admin = admin_client(settings)
    name = state_topic(settings)
    if name not in admin.list_topics(timeout=timeout).topics:
        return
    result_of(
        admin.delete_topics([name], operation_timeout=timeout)[name], f"deleting {name}", timeout
    )
    deadline = time.monotonic() + 60
    while name in admin.list_topics(timeout=timeout).topics:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"{name} still listed 60 s after its deletion")
        time.sleep(0.2)


def child_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child ``oddsflow`` process use these settings."""
    z = settings.pipeline.zones
    env = dict(os.environ)
    env.update(
        {
            "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "ODDSFLOW_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "ODDSFLOW_PIPELINE__ZONES__RAW": z.raw,
            "ODDSFLOW_PIPELINE__ZONES__STAGING": z.staging,
            "ODDSFLOW_PIPELINE__ZONES__CURATED": z.curated,
            "ODDSFLOW_PIPELINE__ZONES__OPERATIONAL": z.operational,
        }
    )
    if settings.postgres.url:
        env["DATABASE_URL"] = settings.postgres.url
    else:
        env["ODDSFLOW_POSTGRES__HOST"] = settings.postgres.host
        env["ODDSFLOW_POSTGRES__PORT"] = str(settings.postgres.port)
    return env


def progress(plan: ReplayPlan, committed: dict[tuple[str, int], int]) -> int:
    """Records of the plan the group has passed."""
    return sum(
        min(max(committed.get((p.topic, p.partition), p.target), p.target), p.until) - p.target
        for p in plan.partitions
    )


async def follow(
    settings: Settings,
    plan: ReplayPlan,
    out: TextIO,
    timeout: float = 600.0,
    interval: float = 1.0,
) -> int:
    """Report progress and ETA until the group has passed the plan's end; returns records done.

    On a terminal a ``rich`` progress bar; otherwise (a log, a pipe) a line every
    :data:`PLAIN_PROGRESS_EVERY` seconds and at the end."""
    admin = admin_client(settings)
    started = time.monotonic()
    console = Console(file=out)
    bar = Progress(
        TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    ) if console.is_terminal else None  # fmt: skip
    task = bar.add_task("replay", total=plan.records) if bar else None
    said_at = 0.0
    if bar:
        bar.start()
    try:
        while True:
            done = progress(plan, await asyncio.to_thread(committed_offsets, admin, plan.group))
            elapsed = time.monotonic() - started
            if bar and task is not None:
                bar.update(task, completed=done)
            elif done >= plan.records or elapsed - said_at >= PLAIN_PROGRESS_EVERY or not said_at:
                said_at = elapsed or 1e-9
                rate = done / elapsed if elapsed > 0 else 0.0
                eta = f"{(plan.records - done) / rate:.0f}s" if rate > 0 else "-"
                print(f"replayed {done}/{plan.records} records, {rate:.0f}/s, ETA {eta}",
                      file=out, flush=True)  # fmt: skip
            if done >= plan.records:
                return done
            if elapsed > timeout:
                raise TimeoutError(
                    f"replay made {done} of {plan.records} records in {timeout:.0f}s"
                )
            await asyncio.sleep(interval)
    finally:
        if bar:
            bar.stop()


async def run_plan(settings: Settings, plan: ReplayPlan, out: TextIO, log: Path | None) -> int:
    """Start the group's worker, follow it to the plan's end, stop it (SIGTERM)."""
    if plan.role is None:
        raise ValueError(f"--run needs a pipeline group ({', '.join(ROLES)}), not {plan.group}")
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "oddsflow.cli", "worker", plan.role],
        env=child_env(settings),
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return await follow(settings, plan, out)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log:
            sink.close()  # type: ignore[union-attr]


# -- command line ---------------------------------------------------------------------------


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True, choices=ZONES, help="whose topics to replay")
    parser.add_argument(
        "--from", dest="from_time", type=moment, help="ISO time or 2h/1d ago; default oldest"
    )
    parser.add_argument(
        "--to", dest="to_time", type=moment, help="ISO time or 30m ago; default the end"
    )
    parser.add_argument("--group", default="sink", help="group to reset (default: the sink)")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.add_argument(
        "--wait-empty",
        type=non_negative_float,
        default=0.0,
        help="wait this long for live members to leave",
    )
    parser.add_argument(
        "--run", action="store_true", help="run the group's worker until the replay is done"
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


async def _run_replay(settings: Settings, args: argparse.Namespace) -> int:
    plan = await asyncio.to_thread(
        plan_replay, settings, args.zone, args.group, args.from_time, args.to_time
    )
    print(dumps(plan.to_json()) if args.json else format_plan(plan), flush=True)
    if args.dry_run:
        if plan.members:
            print(f"note: {refusal(plan)}", file=sys.stderr)
        return 0
    if plan.members and args.wait_empty > 0:
        print(f"waiting up to {args.wait_empty:g}s for {plan.group} to empty...", file=sys.stderr)
        plan.members = await wait_empty(settings, plan.group, args.wait_empty)
    if plan.members:
        print(refusal(plan), file=sys.stderr)
        return 1
    await apply_plan(settings, plan)
    print(f"reset {plan.group} on {len(plan.partitions)} partitions", flush=True)
    if args.run:
        done = await run_plan(settings, plan, sys.stdout, None)
        print(f"replayed {done} records", flush=True)
    else:
        role = plan.role
        hint = f"`oddsflow worker {role}`" if role else "its consumers"
        print(f"start {hint} to reprocess {plan.records} records", flush=True)
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    """0 done (or planned), 1 refused or Kafka unavailable (bad arguments: argparse, 2)."""
    try:
        return asyncio.run(_run_replay(settings, args))
    except KafkaUnavailable as exc:
        print(
            f"oddsflow replay: Kafka at {settings.kafka.bootstrap_servers}: {exc}", file=sys.stderr
        )
        return 1
