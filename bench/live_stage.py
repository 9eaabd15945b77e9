"""The live stage: event time = wall time, as users run the pipeline, with injected steam moves.

The simulator publishes ``games`` x ``books`` at the pace of its event time (a tick a second: every
game updates every second), with a steam move injected every few ticks (three books move one
game's moneyline 20 cents together, rotating through the games). The staging, features and sink
workers run as they do live. Measured, per result, from the broker's acknowledgement of the raw
records that complete it (the tick's flush) to

* the record on its curated topic, read by a subscriber (read_committed, as subscribers read);
* the row in its ``analytics`` table (the sink's transaction time, ``loaded_at``).

For steam moves and for line velocity (every book move of a tick makes a velocity record). The
compressed-time stages hide what this shows: before results were emitted at once, every curated
record waited for the game's watermark (newest event time minus the 10-minute lateness).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, TopicPartition

from bench.harness import percentile
from bench.stages import isolated_settings, worker_processes
from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import topic_name
from producers.collect import publish_live
from producers.simulator import ScriptedJump, Simulator
from schemas.codec import default_codec

STEAM_EVERY = 3  # ticks between injected steam moves
WARMUP_TICKS = 3  # the first ticks meet new clients, first transactions: not measured
STEAM, VELOCITY = "curated.steam_moves", "curated.line_velocity"


def _simulator(games: int, books: int, ticks: int, start: datetime) -> Simulator:
    names = Simulator(seed=9, games=1, books=books).book_names
    jumps = tuple(
        ScriptedJump(game=(t // STEAM_EVERY) % games, book=b, tick=t, cents=-20, both_sides=True)
        for t in range(STEAM_EVERY, ticks - 1, STEAM_EVERY)
        for b in names[:3]
    )
    return Simulator(
        seed=9, games=games, books=books, ticks=ticks, tick_seconds=1, start=start,
        volatility=0.0004, market_jumps=False, scripted_jumps=jumps,
    )  # fmt: skip


class _Subscriber:
    """Reads the curated topics as a subscriber does; notes when each record arrived."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.arrived: dict[tuple[Any, ...], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        decode = default_codec().decode
        c = Consumer(consumer_config(self.s, f"{self.s.kafka.topic_prefix}live-subscriber"))
        topics = [topic_name(self.s, t) for t in (STEAM, VELOCITY)]
        parts = []
        for t in topics:
            md = c.list_topics(t, timeout=10).topics[t]
            parts += [TopicPartition(t, p, 0) for p in md.partitions]
        c.assign(parts)
        try:
            while not self.stop.is_set():
                for msg in c.consume(1000, timeout=0.02):
                    if msg.error() is not None:
                        continue
                    now = time.time()
                    rec = decode(msg.value())
                    self.arrived.setdefault(_key(msg.topic().endswith("steam_moves"), rec), now)
        finally:
            c.close()


def _key(steam: bool, rec: dict[str, Any]) -> tuple[Any, ...]:
    if steam:
        return (STEAM, rec["game_id"], rec["detected_at"])
    return (VELOCITY, rec["game_id"], rec["book"], rec["market"], rec["event_time"])


def _stats(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"n": 0}
    return {
        "n": len(latencies),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


async def _rows(s: Settings, table: str, cols: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        return await conn.fetch(
            f"SELECT {cols}, extract(epoch from loaded_at) AS at"
            f" FROM {s.pipeline.zones.curated}.{table}"
        )
    finally:
        await conn.close()


def live_stage(
    settings: Settings,
    log_dir: Path,
    log: Callable[[str], None],
    games: int = 20,
    books: int = 5,
    ticks: int = 60,
) -> dict[str, Any]:
    """Run the live stage once; latency percentiles to the subscriber and to Postgres."""
    from core.admin import create_topics
    from sinks.migrate import migrate
    from streams.features.worker import features_group
    from streams.staging.worker import staging_group

    s = isolated_settings(settings)
    create_topics(s)
    asyncio.run(migrate(s))
    sub = _Subscriber(s)
    acked: dict[int, float] = {}
    with worker_processes(s, ("staging", "features", "sink"), log_dir) as procs:
        asyncio.run(
            _joined(
                s, [staging_group(s), features_group(s), f"{s.kafka.topic_prefix}oddsflow-sink"]
            )
        )
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        sim = _simulator(games, books, ticks, start)
        sub.thread.start()
        log(f"  live: {games} games x {books} books, a tick a second for {ticks} s")
        publish_live(s, sim, on_tick=lambda tick, _m: acked.__setitem__(tick, time.time()))
        time.sleep(3.0)  # the last tick's results and rows
        assert all(p.poll() is None for p in procs.values()), "a worker died in the live stage"
        steam_rows = asyncio.run(_rows(s, "steam_moves", "game_id, detected_at"))
        velocity_rows = asyncio.run(
            _rows(s, "line_velocity", "game_id, book, market, event_time, window_minutes")
        )
    sub.stop.set()
    sub.thread.join(10)
    tick_of = lambda at: round((at - start).total_seconds())  # noqa: E731
    out: dict[str, Any] = {"games": games, "books": books, "ticks": ticks}
    for name, steam in (("steam", True), ("velocity", False)):
        to_sub = [
            t - acked[tick_of(k[-1])]
            for k, t in sub.arrived.items()
            if (k[0] == STEAM) == steam
            and tick_of(k[-1]) in acked
            and tick_of(k[-1]) >= WARMUP_TICKS
        ]
        rows = steam_rows if steam else [r for r in velocity_rows if r["window_minutes"] == 5]
        to_pg = [
            float(r["at"]) - acked[tick_of(r["detected_at" if steam else "event_time"])]
            for r in rows
            if tick_of(r["detected_at" if steam else "event_time"]) in acked
            and tick_of(r["detected_at" if steam else "event_time"]) >= WARMUP_TICKS
        ]
        out[f"{name}_to_subscriber"] = _stats(to_sub)
        out[f"{name}_to_postgres"] = _stats(to_pg)
    injected = len(range(STEAM_EVERY, ticks - 1, STEAM_EVERY))
    out["steam_injected"] = injected
    return out


async def _joined(s: Settings, groups: list[str]) -> None:
    from core.admin import admin_client

    admin = admin_client(s)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        futures = admin.describe_consumer_groups(groups, request_timeout=10)
        ready = 0
        for fut in futures.values():
            try:
                d = fut.result(timeout=15)
            except Exception:
                continue
            ready += any(m.assignment and m.assignment.topic_partitions for m in d.members)
        if ready == len(groups):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the live stage's workers did not join their groups within 90 s")


def live_table(r: dict[str, Any]) -> list[str]:
    """The live stage's figures as table lines."""
    lines = [
        f"{r['games']} games x {r['books']} books updating every second (event time = wall"
        f" time), {r['steam_injected']} steam moves injected",
        f"{'result':<10} {'to':<11} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8}",
    ]
    for name in ("steam", "velocity"):
        for to in ("subscriber", "postgres"):
            st = r[f"{name}_to_{to}"]
            if not st.get("n"):
                lines.append(f"{name:<10} {to:<11} {0:>6}")
                continue
            lines.append(
                f"{name:<10} {to:<11} {st['n']:>6} {st['p50_ms']:>8} {st['p95_ms']:>8}"
                f" {st['p99_ms']:>8} {st['max_ms']:>8}"
            )
    return lines
