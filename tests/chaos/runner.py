"""The fault-injection run: one known input through two pipelines, one of them tormented.

The *reference* pipeline runs undisturbed on the shared broker and database (its own topic prefix
and schemas). The *chaos* pipeline runs the same three workers on a private broker and a private
Postgres (started here, in a folder of their own, on free ports), so the suite may restart them.
Both receive byte-identical raw records in the same order (simulator snapshots with the poison
corpus interleaved at seeded positions; record timestamps the observation's time and the same
publication header, as a collector writes them), hence the same partitions and offsets. The
records are published at a steady pace, like a live feed, while the workers run: the stream
workers now process in seconds what faust took minutes for, and input published all at once
was worked off before most faults landed. While the chaos pipeline works through them, faults
are injected at random moments, drawn as random points of its progress: SIGKILL of each worker
kind (restarted at once), a broker restart, two broker restarts within one session timeout, a
Postgres stop and restart. When both have drained, every table of every zone must hold the same
rows (natural-key columns and values; lineage and load times excluded), the staging
reconciliation must balance, and no staged record may be on the chaos run's staging topics
more often than on the reference's (restarts are exact, not just de-duplicated).

``python -m tests.chaos.runner [--full|--reduced]`` runs it alone; ``tests/chaos`` (make chaos)
and ``tests/integration/test_chaos_reduced.py`` (make test) assert on its report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Producer

from core.admin import create_topics
from core.isolation import child_env, isolated_settings
from core.kafka_config import producer_config
from core.settings import PROJECT_ROOT, Settings, load_settings
from core.topics import CATALOG, PUBLISHED_HEADER, raw_topic, topic_name
from oddsflow.ops.lag import observe
from oddsflow.services import kafka as kafka_service
from oddsflow.services import postgres as pg_service
from producers.publisher import timestamp_ms
from producers.simulator import Simulator
from schemas.codec import default_codec
from sinks.mapping import LINEAGE
from sinks.migrate import migrate
from streams.staging.reconcile import reconcile
from tests.chaos import corpus, exactness, features_check
from tests.helpers import free_ports

SHARED_LIBS = PROJECT_ROOT / ".local" / "kafka" / "libs"
KEEP_ENV = "ODDSFLOW_CHAOS_KEEP"
ROLES = ("staging", "features", "sink")
#: Columns that say when or by which process a row was made, not what it is.
VOLATILE = {*LINEAGE, "loaded_at", "failed_at"}
#: Wall-clock columns of operational events (which worker, when) — compared without them.
VOLATILE_PER_TABLE = {"pipeline_events": {"at", "worker"}, "quality": {"emitted_at"}}
#: Tables of telemetry rather than data, not compared (their row counts are still reported):
#: ``quality`` is keyed by the wall-clock minute in which a staging process counted its records,
#: in memory, so two runs (and a crash, which counts re-processed records again) differ by
#: design (streams/staging/quality_report.py).
TELEMETRY = {"quality"}
FAULT_KINDS = (
    "kill_staging",
    "kill_features",
    "kill_sink",
    "broker_restart",
    "broker_double_restart",
    "postgres_restart",
)
#: The second restart of ``broker_double_restart`` begins this long after the broker is back
#: from the first: within the workers' 10 s session timeout, while they rejoin (issue #17: the
#: features consumer "rejoined" into nothing and sat alive without an assignment).
DOUBLE_RESTART_GAP = 5.0


@dataclass(frozen=True)
class Plan:
    """Size of the input and how many faults of each kind to inject.

    ``idle_flush_seconds`` is the features worker's idle flush, the one wall-clock decision. It
    outlasts the usual pauses of its input that a fault causes (a restart, a rejoin), not the
    longest: a stream worker orphaned by the double broker restart is exited by its watchdog
    after 45 s without an assignment, one stuck in a transactional call after a broker restart
    (librdkafka #5456) after 150-180 s. A flush in mid-stream then happens in the tormented run
    only; since the feature worker applies records at once, a flush only settles a score that
    came before first pitch, which the simulator's games never have (no feature vectors), so it
    changes no output here. The quiet period of the drain is derived from it.

    ``publish_seconds``: how long the raw records take to publish, at a steady pace (0: all at
    once). The faults land while records flow, some into a backlog a fault left behind.
    """

    games: int
    books: int
    ticks: int
    kills_per_role: int
    broker_restarts: int
    postgres_restarts: int
    poison_per_kind: int
    broker_double_restarts: int = 1
    publish_seconds: float = 0.0
    seed: int = 11
    tick_seconds: int = 30
    idle_flush_seconds: float = 45.0
    postgres_outage: tuple[float, float] = (2.0, 8.0)  # seconds the database stays down
    drain_timeout: float = 900.0

    @property
    def raw_records(self) -> int:
        return self.games * self.books * self.ticks


FULL = Plan(
    games=25,
    books=10,
    ticks=400,
    kills_per_role=5,
    broker_restarts=2,
    postgres_restarts=2,
    poison_per_kind=20,
    publish_seconds=240.0,
)
REDUCED = Plan(
    games=4,
    books=5,
    ticks=400,
    kills_per_role=1,
    broker_restarts=1,
    postgres_restarts=1,
    poison_per_kind=3,
    publish_seconds=45.0,
    drain_timeout=240.0,
)


@dataclass
class Report:
    """What was injected and what was found."""

    plan: Plan
    raw_published: dict[str, int] = field(default_factory=dict)  # per raw topic
    poison: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    fault_log: list[str] = field(default_factory=list)
    rows_reference: dict[str, int] = field(default_factory=dict)
    rows_chaos: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[tuple]] = field(default_factory=dict)  # in reference, not in chaos
    extra: dict[str, list[tuple]] = field(default_factory=dict)  # in chaos, not in reference
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    restarts_seen: dict[str, int] = field(default_factory=dict)
    #: curated topic -> (expected, written, differing): the features worker against the engine
    #: run in process on the chaos run's own staging topics (``features_check.py``)
    features_check: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: staging topic -> (records on the reference's, on the chaos run's, re-emitted): records
    #: the chaos run holds more often than the reference (``exactness.py``)
    staging_copies: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: role -> exit statuses of chaos workers that exited by themselves (70: an error or the
    #: watchdog), and the watchdog's reasons found in their logs
    exits: dict[str, list[int]] = field(default_factory=dict)
    watchdog: list[str] = field(default_factory=list)

    @property
    def staging_exact(self) -> bool:
        return bool(self.staging_copies) and not any(r for *_, r in self.staging_copies.values())

    @property
    def features_exact(self) -> bool:
        return bool(self.features_check) and not any(d for *_, d in self.features_check.values())

    @property
    def tables_equal(self) -> bool:
        return not any(self.missing.values()) and not any(self.extra.values())

    @property
    def reconciled(self) -> bool:
        return bool(self.reconciliation) and all(r["balanced"] for r in self.reconciliation)

    def format(self) -> str:
        p = self.plan
        lines = [
            f"chaos: {p.games} games x {p.books} books x {p.ticks} ticks = {p.raw_records} "
            f"simulator records, seed {p.seed}",
            "injected:",
            *(f"  {k:<22} {self.faults.get(k, 0):>5}" for k in FAULT_KINDS),
            f"  {'poison records':<22} {sum(self.poison.values()):>5}",
            *(f"    {k:<20} {n:>5}" for k, n in sorted(self.poison.items())),
            "raw records published (each run): "
            + ", ".join(f"{t} {n}" for t, n in sorted(self.raw_published.items())),
            "found (table: reference rows / chaos rows, missing, extra):",
        ]
        for t in sorted(self.rows_reference):
            miss, extra = len(self.missing.get(t, [])), len(self.extra.get(t, []))
            flag = "" if not miss and not extra else "   <-- DIFFERS"
            if t.split(".")[1] in TELEMETRY:
                flag = "   (telemetry: not compared)"
            lines.append(
                f"  {t:<32} {self.rows_reference[t]:>8} / {self.rows_chaos.get(t, 0):>8}"
                f"  missing {miss:>5}  extra {extra:>5}{flag}"
            )
            for row in self.missing.get(t, [])[:3]:
                lines.append(f"      missing e.g. {str(row)[:160]}")
            for row in self.extra.get(t, [])[:3]:
                lines.append(f"      extra   e.g. {str(row)[:160]}")
        lines += _per_topic(
            "features worker vs the engine on the chaos run's own staging topics"
            " (distinct records: expected / written, differing):",
            self.features_check,
            "differing",
            "DIFFERS",
        )
        lines += _per_topic(
            "staging topics, records on reference / chaos run, re-emitted after restarts"
            " (more copies of a (key, value) than the reference has):",
            self.staging_copies,
            "re-emitted",
            "RE-EMITTED",
        )
        lines.append("staging reconciliation (chaos run):")
        for r in self.reconciliation:
            lines.append(
                f"  {r['source']:<15} raw in {r['raw_in']:>7} = promoted {r['raw_promoted']}"
                f" + unchanged {r['raw_unchanged']} + late {r['raw_late']} + dead-lettered"
                f" {r['raw_dead_lettered']} (pending {r['raw_pending']}, unexplained"
                f" {r['raw_unexplained']}) -> {'balanced' if r['balanced'] else 'NOT BALANCED'}"
            )
        starts = ", ".join(f"{r} {n}" for r, n in sorted(self.restarts_seen.items()))
        exits = ", ".join(f"{r} {codes}" for r, codes in sorted(self.exits.items())) or "none"
        lines.append(f"chaos worker starts: {starts}; exited by themselves: {exits}")
        lines.extend(f"  watchdog: {w}" for w in self.watchdog)
        lines.append("durations: " + ", ".join(f"{k} {v:.0f}s" for k, v in self.durations.items()))
        lines.append(
            f"verdict: {'PASS' if self.passed else 'FAIL'} (tables equal: {self.tables_equal},"
            f" reconciled: {self.reconciled}, staging exact: {self.staging_exact})"
        )
        return "\n".join(lines)

    @property
    def passed(self) -> bool:
        return self.tables_equal and self.reconciled and self.staging_exact


def _per_topic(
    title: str, rows: dict[str, tuple[int, int, int]], what: str, flag: str
) -> list[str]:
    """A report section: per topic (a, b, bad), flagged where bad is not 0."""
    lines = [title]
    for t, (a, b, bad) in sorted(rows.items()):
        mark = f"   <-- {flag}" if bad else ""
        lines.append(f"  {t:<32} {a:>8} / {b:>8}  {what} {bad:>6}{mark}")
    return lines


# -- input ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRecord:
    topic: str  # logical
    key: bytes
    value: bytes
    poison: str | None = None
    timestamp_ms: int = 0  # the observation's time, as a collector stamps it
    published_ms: int = 0  # when it is due, for the publication header (the same in both runs)


def build_input(plan: Plan) -> list[RawRecord]:
    """Simulator snapshots in time order with the poison corpus at seeded positions, each with
    its record timestamp and its due time of publication (``plan.publish_seconds`` apart from
    first to last).

    Why a fixed publication header: without one, staging judges a record's timeliness by its
    own clock, and a poisoned record's quality-gate reason ("published 200 min after it was
    fetched") differed between the two runs by the minutes between their processing.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=plan.ticks * plan.tick_seconds)
    sim = Simulator(
        seed=plan.seed,
        games=plan.games,
        books=plan.books,
        ticks=plan.ticks,
        tick_seconds=plan.tick_seconds,
        start=start,
    )
    encode = default_codec().encoder(corpus.ENVELOPE)
    records = [
        RawRecord(
            raw_topic("simulator"),
            sim.key_of(event_id).encode(),
            encode(
                {
                    "event_id": event_id,
                    "source": "simulator",
                    "fetched_at": fetched,
                    "content_type": "application/json",
                    "payload": payload,
                    "request": {},
                }
            ),
            timestamp_ms=timestamp_ms(fetched),
        )
        for event_id, payload, fetched in sim.envelopes()
    ]
    rng = random.Random(plan.seed)
    for poison in corpus.build(plan.poison_per_kind, plan.seed, start):
        records.insert(
            rng.randint(0, len(records)),
            RawRecord(poison.topic, poison.key, poison.value, poison.kind, timestamp_ms(start)),
        )
    first = int(now.timestamp() * 1000)
    step = plan.publish_seconds * 1000 / max(len(records) - 1, 1)
    return [replace(r, published_ms=first + round(i * step)) for i, r in enumerate(records)]


def publish(
    settings: Settings, records: list[RawRecord], stop: threading.Event | None = None
) -> dict[str, int]:
    """Produce ``records`` in order (idempotent, acks=all), each when it is due (its
    ``published_ms`` after the first's); every one must be acknowledged. While the broker
    restarts, records wait in the producer and go out in order when it is back."""
    producer = Producer(producer_config(settings, **{"message.max.bytes": 2_000_000}))
    failed: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(f"{msg.topic()}: {err}")

    counts: Counter[str] = Counter()
    t0 = time.monotonic()
    first = records[0].published_ms if records else 0
    for r in records:
        if stop is not None and stop.is_set():
            break
        due = t0 + (r.published_ms - first) / 1000
        while (wait := due - time.monotonic()) > 0:
            producer.poll(wait)  # serves delivery reports meanwhile: a schedule, not a condition
        topic = topic_name(settings, r.topic)
        headers = [(PUBLISHED_HEADER, str(r.published_ms).encode())]
        while True:
            try:
                producer.produce(
                    topic, key=r.key, value=r.value, headers=headers,
                    timestamp=r.timestamp_ms, on_delivery=delivered,
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.05)
        counts[r.topic] += 1
    left = producer.flush(5 if stop is not None and stop.is_set() else 300)
    if left or failed:
        raise RuntimeError(f"publishing failed: {left} unacknowledged, errors {failed[:5]}")
    return dict(counts)


# -- services and workers ---------------------------------------------------------------------


def start_private(base: Settings) -> Settings:
    """A private broker and Postgres with ``base``'s prefix and schemas (stop with stop_private).

    The folder is not pytest's: other sessions rotate pytest's temporary folders meanwhile.
    """
    if not (SHARED_LIBS / ".complete").exists():
        raise RuntimeError("the local Kafka jars are not assembled: run `oddsflow services up`")
    state = Path(tempfile.mkdtemp(prefix="oddsflow-chaos-"))
    (state / "kafka").mkdir()
    (state / "kafka" / "libs").symlink_to(SHARED_LIBS)
    kport, cport, pport = free_ports(3)
    data = base.model_dump()
    data["state_dir"] = state
    data["kafka"] = {**data["kafka"], "bootstrap_servers": f"127.0.0.1:{kport}",
                     "controller_port": cport}  # fmt: skip
    data["postgres"] = {**data["postgres"], "port": pport, "url": None, "password": None,
                        "sslmode": None, "sslrootcert": None}  # fmt: skip
    s = load_settings(**data)
    try:
        kafka_service.start(s)
        pg_service.start(s)
    except BaseException:
        stop_private(s)
        raise
    return s


def stop_private(s: Settings) -> None:
    """Stop the private servers and remove their folder (kept with ``ODDSFLOW_CHAOS_KEEP=1``,
    to read the chaos run's topics and tables afterwards: ``oddsflow services up`` with its
    settings starts them again)."""
    try:
        pg_service.stop(s)
    finally:
        kafka_service.stop(s)
        if os.environ.get(KEEP_ENV) == "1":
            print(f"chaos run's broker and database kept in {s.state_dir}", flush=True)
        else:
            shutil.rmtree(s.state_dir, ignore_errors=True)


class Workers:
    """One ``oddsflow worker ROLE`` process per role, each in its own session (killable whole)."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        roles: tuple[str, ...] = ROLES,
        verbose: bool = False,
    ) -> None:
        self.env = child_env(settings)
        self.verbose = ["-v"] if verbose else []  # the runtime's INFO lines: restores, counters
        self.log_dir = log_dir
        self.roles = roles
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()
        self.exits: dict[str, list[int]] = {}  # statuses of workers that exited by themselves
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, role: str) -> None:
        self.starts[role] += 1
        with open(self.log_dir / f"{role}.log", "ab") as log:
            log.write(f"\n=== start {self.starts[role]} at {time.time():.1f}\n".encode())
            log.flush()
            self.procs[role] = subprocess.Popen(
                [sys.executable, "-m", "oddsflow.cli", *self.verbose, "worker", role],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )  # fmt: skip

    def start_all(self) -> None:
        for role in self.roles:
            self.start(role)

    def signal(self, role: str, sig: signal.Signals) -> None:
        p = self.procs[role]
        if p.poll() is None:
            os.killpg(p.pid, sig)

    def kill(self, role: str) -> None:
        """SIGKILL the role's process group and reap it."""
        self.signal(role, signal.SIGKILL)
        self.procs[role].wait()

    def ensure_running(self) -> list[str]:
        """Restart any worker that exited by itself; returns the roles restarted."""
        dead = [r for r, p in self.procs.items() if p.poll() is not None]
        for r in dead:
            self.exits.setdefault(r, []).append(self.procs[r].returncode)
            self.start(r)
        return dead

    def watchdog_lines(self) -> list[str]:
        """What the workers' watchdogs said when they exited one (from the logs)."""
        found = []
        for role in self.roles:
            path = self.log_dir / f"{role}.log"
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    if "oddsflow.runtime.watchdog" in line and "CRITICAL" in line:
                        found.append(line.split("CRITICAL oddsflow.runtime.watchdog: ", 1)[-1])
        return found

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# -- observing --------------------------------------------------------------------------------


def tables(settings: Settings) -> list[tuple[str, str]]:
    """(key, qualified table) of every table the sink writes, once each."""
    seen: dict[str, str] = {}
    for spec in CATALOG:
        q = f"{spec.schema_name(settings)}.{spec.table}"
        seen.setdefault(f"{spec.zone.value}.{spec.table}", q)
    return sorted(seen.items())


async def _connect(settings: Settings) -> asyncpg.Connection | None:
    try:
        return await asyncpg.connect(settings.postgres.dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None


async def row_counts(settings: Settings) -> dict[str, int] | None:
    """Rows per table, or None while the database does not answer."""
    conn = await _connect(settings)
    if conn is None:
        return None
    try:
        return {k: await conn.fetchval(f"SELECT count(*) FROM {q}") for k, q in tables(settings)}
    except (OSError, asyncpg.PostgresError):
        return None
    finally:
        await conn.close()


def _frozen(value: Any) -> Any:
    """A hashable form of a column value (arrays become tuples)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


async def table_rows(settings: Settings) -> dict[str, Counter[tuple]]:
    """Every row of every table, without lineage and load times, as a multiset."""
    conn = await asyncpg.connect(settings.postgres.dsn, timeout=10)
    out: dict[str, Counter[tuple]] = {}
    try:
        for key, q in tables(settings):
            schema, table = q.split(".")
            cols = [
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1"
                    " AND table_name = $2 ORDER BY ordinal_position",
                    schema,
                    table,
                )
            ]
            skip = VOLATILE | VOLATILE_PER_TABLE.get(table, set())
            keep = [c for c in cols if c not in skip]
            if table in TELEMETRY:
                continue
            rows = await conn.fetch(f"SELECT {', '.join(keep)} FROM {q}")
            out[key] = Counter(tuple(_frozen(v) for v in r.values()) for r in rows)
    finally:
        await conn.close()
    return out


def lags(settings: Settings) -> dict[str, int] | None:
    """Records each role's group has yet to consume, or None while the broker does not answer."""
    try:
        groups = observe(settings, list(ROLES), timeout=5)
    except Exception:  # a restarting broker fails many ways
        return None
    return {g.group.rsplit("-", 1)[-1]: g.lag if g.partitions else -1 for g in groups}


async def drained(
    settings: Settings,
    quiet_for: float,
    timeout: float,
    what: str,
    workers: Workers,
) -> dict[str, int]:
    """Wait until every group has consumed everything and no table changed for ``quiet_for`` s.

    ``workers`` are supervised: one that exits (a worker exits on an error it cannot recover
    from in process, or when its watchdog finds it stuck or orphaned) is restarted, as a process
    supervisor would, and a restart starts the quiet period again (the new process has yet to
    flush what its predecessor held back). Both pipelines drain at once, each supervising its
    own workers.
    """
    deadline = time.monotonic() + timeout
    last: dict[str, int] | None = None
    since = time.monotonic()
    while True:
        restarted = workers.ensure_running()
        if restarted:
            print(f"{what}: worker(s) {restarted} had exited by themselves: restarted", flush=True)
        counts = await row_counts(settings)
        lag = await asyncio.to_thread(lags, settings)
        if restarted or counts != last or lag is None or any(v != 0 for v in lag.values()):
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet_for and counts is not None:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not drain in {timeout:.0f}s: lag {lag}, rows {counts}")
        await asyncio.sleep(1.0)


def progress(settings: Settings, total: int) -> float | None:
    """How far the chaos pipeline is, 0..1 (None while the broker does not answer).

    The staging group's share of the raw records times the features group's share of what
    staging has promoted so far: the slowest stage drives it, so faults spread over the whole
    run instead of bunching where staging finishes early.
    """
    try:
        seen = observe(settings, ["staging", "features"], timeout=5)
    except Exception:  # a restarting broker fails many ways
        return None
    groups = {g.group.rsplit("-", 1)[-1]: g for g in seen}
    prefix = settings.kafka.topic_prefix
    raw = prefix + "raw.odds."
    staged = sum(p.committed or 0 for p in groups["staging"].partitions if p.topic.startswith(raw))
    inputs = [p for p in groups["features"].partitions if p.topic.startswith(prefix + "staging.")]
    ends = sum(p.end for p in inputs)
    features = sum(p.committed or 0 for p in inputs) / ends if ends else 0.0
    return staged / total * min(features, 1.0)


# -- the run ----------------------------------------------------------------------------------


class Chaos:
    """Injects the planned faults into the chaos pipeline at random points of its progress."""

    def __init__(self, plan: Plan, settings: Settings, workers: Workers, report: Report) -> None:
        self.plan, self.s, self.workers, self.report = plan, settings, workers, report
        self.rng = random.Random(plan.seed * 7919 + int(time.time()))  # random moments per run
        bag = (
            [f"kill_{r}" for r in ROLES for _ in range(plan.kills_per_role)]
            + ["broker_restart"] * plan.broker_restarts
            + ["broker_double_restart"] * plan.broker_double_restarts
            + ["postgres_restart"] * plan.postgres_restarts
        )
        self.rng.shuffle(bag)
        points = sorted(self.rng.uniform(0.03, 0.97) for _ in bag)
        self.schedule = list(zip(points, bag, strict=True))

    def log(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {text}"
        self.report.fault_log.append(line)
        print(line, flush=True)

    async def run(self, total: int) -> None:
        self.t0 = time.monotonic()
        for point, fault in self.schedule:
            moved, best = time.monotonic(), -1.0
            while True:
                done = await asyncio.to_thread(progress, self.s, total)
                if done is not None and done >= point:
                    break
                if done is not None and done > best:
                    moved, best = time.monotonic(), done
                if time.monotonic() - moved > self.plan.drain_timeout:
                    raise TimeoutError(
                        f"staging made no progress for {self.plan.drain_timeout:.0f}s at "
                        f"{best:.0%} (waiting to inject {fault} at {point:.0%})"
                    )
                restarted = self.workers.ensure_running()
                if restarted:
                    self.log(f"worker(s) {restarted} had exited by themselves: restarted")
                await asyncio.sleep(0.5)
            await self.inject(fault, done)

    async def restart_broker(self) -> None:
        t = time.monotonic()
        await asyncio.to_thread(kafka_service.stop, self.s)
        await asyncio.to_thread(kafka_service.start, self.s)
        self.log(f"broker back after {time.monotonic() - t:.1f}s")

    async def inject(self, fault: str, done: float) -> None:
        self.report.faults[fault] += 1
        if fault.startswith("kill_"):
            role = fault.removeprefix("kill_")
            self.workers.kill(role)
            self.log(f"SIGKILL {role} at progress {done:.0%}; restarting")
            self.workers.start(role)
        elif fault == "broker_restart":
            self.log(f"broker restart at progress {done:.0%}")
            await self.restart_broker()
        elif fault == "broker_double_restart":
            self.log(f"broker restart at progress {done:.0%}, again {DOUBLE_RESTART_GAP:.0f}s"
                     " after it is back")  # fmt: skip
            await self.restart_broker()
            await asyncio.sleep(DOUBLE_RESTART_GAP)  # the gap is a duration, not a condition
            self.log("second broker restart")
            await self.restart_broker()
        elif fault == "postgres_restart":
            outage = self.rng.uniform(*self.plan.postgres_outage)
            self.log(f"Postgres stop at progress {done:.0%} for {outage:.1f}s")
            await asyncio.to_thread(pg_service.stop, self.s)
            await asyncio.sleep(outage)  # the outage is a duration, not a condition
            await asyncio.to_thread(pg_service.start, self.s)
            self.log("Postgres back")


async def run(plan: Plan, shared: Settings, work: Path) -> Report:
    """The whole fault-injection run; returns the report (assertions are the caller's)."""
    report = Report(plan)
    t0 = time.monotonic()
    tag = "c" + uuid.uuid4().hex[:8]
    ref = isolated_settings(shared, tag)
    ref = ref.model_copy(update={"state_dir": work / "reference-state"})
    ref.features.idle_flush_seconds = plan.idle_flush_seconds
    records = build_input(plan)
    report.poison = Counter(r.poison for r in records if r.poison)
    chaos_s = await asyncio.to_thread(start_private, ref)
    stop_feeds = threading.Event()
    try:
        report.durations["private services up"] = time.monotonic() - t0
        for s in (ref, chaos_s):
            create_topics(s)
            await migrate(s)
        ref_workers = Workers(ref, work / "logs-reference")
        chaos_workers = Workers(chaos_s, work / "logs-chaos", verbose=True)
        try:
            t1 = time.monotonic()
            ref_workers.start_all()
            chaos_workers.start_all()
            feeds = [
                asyncio.ensure_future(asyncio.to_thread(publish, s, records, stop_feeds))
                for s in (ref, chaos_s)
            ]
            chaos = Chaos(plan, chaos_s, chaos_workers, report)
            await chaos.run(len(records))
            report.durations["faults injected"] = time.monotonic() - t1
            report.raw_published, chaos_published = await asyncio.gather(*feeds)
            assert chaos_published == report.raw_published
            report.durations["published"] = time.monotonic() - t1
            # the idle flush after a worker's start-up (imports, group join, table recovery)
            quiet = plan.idle_flush_seconds + 30

            async def drain(s: Settings, what: str, workers: Workers) -> dict[str, int]:
                counts = await drained(s, quiet, plan.drain_timeout, what, workers)
                report.durations[f"{what} drained"] = time.monotonic() - t1
                return counts

            drains = [
                asyncio.ensure_future(drain(ref, "reference", ref_workers)),
                asyncio.ensure_future(drain(chaos_s, "chaos run", chaos_workers)),
            ]
            try:
                report.rows_reference, report.rows_chaos = await asyncio.gather(*drains)
            finally:  # a failed drain must not leave the other restarting stopped workers
                for task in drains:
                    task.cancel()
            want, got = await table_rows(ref), await table_rows(chaos_s)
            for key in want:
                report.missing[key] = sorted((want[key] - got[key]).elements(), key=str)
                report.extra[key] = sorted((got[key] - want[key]).elements(), key=str)
            report.reconciliation = await asyncio.to_thread(reconcile, chaos_s)
            report.features_check = await asyncio.to_thread(features_check.check, chaos_s)
            report.staging_copies = await asyncio.to_thread(exactness.reemitted, ref, chaos_s)
            report.restarts_seen = dict(chaos_workers.starts)
            report.exits = dict(chaos_workers.exits)
            report.watchdog = chaos_workers.watchdog_lines()
        finally:
            stop_feeds.set()
            ref_workers.stop_all()
            chaos_workers.stop_all()
    finally:
        await asyncio.to_thread(stop_private, chaos_s)
        report.durations["total"] = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the make-test size")
    parser.add_argument("--ticks", type=int, help="override the plan's ticks")
    args = parser.parse_args(argv)
    plan = REDUCED if args.reduced else FULL
    if args.ticks:
        plan = replace(plan, ticks=args.ticks)
    from oddsflow import services

    shared = load_settings()
    services.up(shared)
    work = Path(tempfile.mkdtemp(prefix="oddsflow-chaos-run-"))
    report = asyncio.run(run(plan, shared, work))
    print(report.format())
    print(f"worker logs: {work}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
