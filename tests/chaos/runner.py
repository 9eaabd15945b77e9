"""The fault-injection run: one known input through two pipelines, one of them tormented.

The *reference* pipeline runs undisturbed on the shared broker and database (its own topic prefix
and schemas). The *chaos* pipeline runs the same three workers on a private broker and a private
Postgres (started here, in a folder of their own, on free ports), so the suite may restart them.
Both receive byte-identical raw records in the same order (simulator snapshots with the poison
corpus interleaved at seeded positions), hence the same partitions and offsets. While the chaos
pipeline works through them, faults are injected at random moments, drawn as random points of
its progress: SIGKILL of each worker kind (restarted at once), a broker restart, a
Postgres stop and restart. When both have drained, every table of every zone must hold the same
rows (natural-key columns and values; lineage and load times excluded) and the staging
reconciliation must balance.

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
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Producer

from oddsflow.admin import create_topics
from oddsflow.isolation import child_env, isolated_settings
from oddsflow.kafka_config import producer_config
from oddsflow.ops.lag import observe
from oddsflow.services import kafka as kafka_service
from oddsflow.services import postgres as pg_service
from oddsflow.settings import PROJECT_ROOT, Settings, load_settings
from oddsflow.topics import CATALOG, raw_topic, topic_name
from producers.simulator import Simulator
from schemas.codec import default_codec
from sinks.mapping import LINEAGE
from sinks.migrate import migrate
from streams.staging.reconcile import reconcile
from tests.chaos import corpus, features_check
from tests.helpers import free_ports

SHARED_LIBS = PROJECT_ROOT / ".local" / "kafka" / "libs"
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
    "postgres_restart",
)


@dataclass(frozen=True)
class Plan:
    """Size of the input and how many faults of each kind to inject.

    ``idle_flush_seconds`` is the features worker's idle flush, the one wall-clock decision: it
    must outlast any pause of its input that a fault causes (a restarted staging worker waits
    out the 10 s session timeout of the killed one), or a flush in mid-stream would make the
    rest of an instant late in the tormented run only.
    """

    games: int
    books: int
    ticks: int
    kills_per_role: int
    broker_restarts: int
    postgres_restarts: int
    poison_per_kind: int
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
)
REDUCED = Plan(
    games=4,
    books=5,
    ticks=400,
    kills_per_role=1,
    broker_restarts=1,
    postgres_restarts=1,
    poison_per_kind=3,
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
        lines.append(
            "features worker vs the engine on the chaos run's own staging topics"
            " (distinct records: expected / written, differing):"
        )
        for t, (want, got, diff) in sorted(self.features_check.items()):
            flag = "" if not diff else "   <-- DIFFERS"
            lines.append(f"  {t:<32} {want:>8} / {got:>8}  differing {diff:>6}{flag}")
        lines.append("staging reconciliation (chaos run):")
        for r in self.reconciliation:
            lines.append(
                f"  {r['source']:<15} raw in {r['raw_in']:>7} = promoted {r['raw_promoted']}"
                f" + unchanged {r['raw_unchanged']} + late {r['raw_late']} + dead-lettered"
                f" {r['raw_dead_lettered']} (pending {r['raw_pending']}, unexplained"
                f" {r['raw_unexplained']}) -> {'balanced' if r['balanced'] else 'NOT BALANCED'}"
            )
        lines.append("durations: " + ", ".join(f"{k} {v:.0f}s" for k, v in self.durations.items()))
        verdict = "PASS" if self.tables_equal and self.reconciled else "FAIL"
        lines.append(f"verdict: {verdict} (tables equal: {self.tables_equal}, "
                     f"reconciled: {self.reconciled})")  # fmt: skip
        return "\n".join(lines)


# -- input ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRecord:
    topic: str  # logical
    key: bytes
    value: bytes
    poison: str | None = None


def build_input(plan: Plan) -> list[RawRecord]:
    """Simulator snapshots in time order with the poison corpus at seeded positions."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(
        seconds=plan.ticks * plan.tick_seconds
    )
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
        )
        for event_id, payload, fetched in sim.envelopes()
    ]
    rng = random.Random(plan.seed)
    for poison in corpus.build(plan.poison_per_kind, plan.seed, start):
        records.insert(
            rng.randint(0, len(records)),
            RawRecord(poison.topic, poison.key, poison.value, poison.kind),
        )
    return records


def publish(settings: Settings, records: list[RawRecord]) -> dict[str, int]:
    """Produce ``records`` in order (idempotent, acks=all); every one must be acknowledged."""
    producer = Producer(producer_config(settings, **{"message.max.bytes": 2_000_000}))
    failed: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(f"{msg.topic()}: {err}")

    counts: Counter[str] = Counter()
    for r in records:
        topic = topic_name(settings, r.topic)
        while True:
            try:
                producer.produce(topic, key=r.key, value=r.value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        counts[r.topic] += 1
    left = producer.flush(120)
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
    """Stop the private servers and remove their folder."""
    try:
        pg_service.stop(s)
    finally:
        kafka_service.stop(s)
        shutil.rmtree(s.state_dir, ignore_errors=True)


class Workers:
    """One ``oddsflow worker ROLE`` process per role, each in its own session (killable whole)."""

    def __init__(self, settings: Settings, log_dir: Path, roles: tuple[str, ...] = ROLES) -> None:
        self.env = child_env(settings)
        self.log_dir = log_dir
        self.roles = roles
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, role: str) -> None:
        self.starts[role] += 1
        with open(self.log_dir / f"{role}.log", "ab") as log:
            log.write(f"\n=== start {self.starts[role]} at {time.time():.1f}\n".encode())
            log.flush()
            self.procs[role] = subprocess.Popen(
                [sys.executable, "-m", "oddsflow.cli", "worker", role],
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
            self.start(r)
        return dead

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
    also: Workers | None = None,
) -> dict[str, int]:
    """Wait until every group has consumed everything and no table changed for ``quiet_for`` s.

    ``workers`` (and ``also``: the other pipeline's, which must not stay down meanwhile) are
    supervised: one that exits (a worker exits on an error it cannot recover from in process,
    or when it starts while the broker restarts) is restarted, as a process supervisor would,
    and a restart of ``workers`` starts the quiet period again (the new process has yet to
    flush what its predecessor held back).
    """
    deadline = time.monotonic() + timeout
    last: dict[str, int] | None = None
    since = time.monotonic()
    while True:
        if also is not None and (restarted := also.ensure_running()):
            print(f"(while {what} drains) worker(s) {restarted} had exited: restarted", flush=True)
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

    async def inject(self, fault: str, done: float) -> None:
        self.report.faults[fault] += 1
        if fault.startswith("kill_"):
            role = fault.removeprefix("kill_")
            self.workers.kill(role)
            self.log(f"SIGKILL {role} at progress {done:.0%}; restarting")
            self.workers.start(role)
        elif fault == "broker_restart":
            self.log(f"broker restart at progress {done:.0%}")
            t = time.monotonic()
            await asyncio.to_thread(kafka_service.stop, self.s)
            await asyncio.to_thread(kafka_service.start, self.s)
            self.log(f"broker back after {time.monotonic() - t:.1f}s")
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
    try:
        report.durations["private services up"] = time.monotonic() - t0
        for s in (ref, chaos_s):
            create_topics(s)
            await migrate(s)
        ref_workers = Workers(ref, work / "logs-reference")
        chaos_workers = Workers(chaos_s, work / "logs-chaos")
        try:
            report.raw_published = await asyncio.to_thread(publish, ref, records)
            assert await asyncio.to_thread(publish, chaos_s, records) == report.raw_published
            t1 = time.monotonic()
            ref_workers.start_all()
            chaos_workers.start_all()
            chaos = Chaos(plan, chaos_s, chaos_workers, report)
            await chaos.run(len(records))
            report.durations["faults injected"] = time.monotonic() - t1
            # the idle flush after a worker's start-up (imports, group join, table recovery)
            quiet = plan.idle_flush_seconds + 30
            reference_counts = await drained(
                ref, quiet, plan.drain_timeout, "the reference", ref_workers, chaos_workers
            )
            report.durations["reference drained"] = time.monotonic() - t1
            report.rows_chaos = await drained(
                chaos_s, quiet, plan.drain_timeout, "chaos run", chaos_workers
            )
            report.durations["chaos drained"] = time.monotonic() - t1
            report.rows_reference = reference_counts
            want, got = await table_rows(ref), await table_rows(chaos_s)
            for key in want:
                report.missing[key] = sorted((want[key] - got[key]).elements(), key=str)
                report.extra[key] = sorted((got[key] - want[key]).elements(), key=str)
            report.reconciliation = await asyncio.to_thread(reconcile, chaos_s)
            report.features_check = await asyncio.to_thread(features_check.check, chaos_s)
            report.restarts_seen = dict(chaos_workers.starts)
        finally:
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
    return 0 if report.tables_equal and report.reconciled else 1


if __name__ == "__main__":
    sys.exit(main())
