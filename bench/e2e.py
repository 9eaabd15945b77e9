"""End to end: the simulator offers fixed rates to the running workers; latency to Postgres rows.

A record's publish time is the wall clock when the collector hands it to the producer (the Kafka
CreateTime); it is kept per raw event id. Staging rows carry that id (``source_event_id``), so
publish → row latency is exact per row, with ``loaded_at`` (the sink transaction's ``now()``) as
the row's time. Curated rows are joined to the staging row they came from (curated results leave
with their input: no lateness buffer). "Lag grew" judges every group of the pipeline (staging,
features, sink): more than a second of input left when the offer ends, or no drain.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.harness import percentile, proc_cpu_seconds, proc_peak_rss_mb
from bench.stages import (
    ENVELOPE,
    envelope_record,
    isolated_settings,
    simulator,
    worker_processes,
)
from core.settings import Settings
from producers.publisher import Publisher
from schemas.codec import default_codec


def _latency(rows: list[asyncpg.Record], published: dict[str, float]) -> dict[str, Any]:
    lat = [r["at"] - published[r["id"]] for r in rows if r["id"] in published]
    if not lat:
        return {"rows": 0}
    return {
        "rows": len(lat),
        "p50_ms": round(1000 * percentile(lat, 50), 1),
        "p95_ms": round(1000 * percentile(lat, 95), 1),
        "p99_ms": round(1000 * percentile(lat, 99), 1),
        "max_ms": round(1000 * max(lat), 1),
    }


class Lag:
    """Records the pipeline has not consumed yet: the staging, features and sink groups' lag on
    every topic they read (end offset − committed, transaction markers not counted)."""

    def __init__(self, s: Settings) -> None:
        from core.offsets import admin_client
        from streams.features.worker import features_group
        from streams.staging.worker import staging_group

        self.s = s
        self.groups = [staging_group(s), features_group(s), f"{s.kafka.topic_prefix}oddsflow-sink"]
        self.admin = admin_client(s)  # reused: a sample does not connect anew

    def __call__(self) -> int:
        from oddsflow.ops.lag import observe

        return sum(g.lag for g in observe(self.s, self.groups, admin=self.admin))

    def close(self) -> None:
        pass


async def _offer(
    s: Settings,
    conn: asyncpg.Connection,
    lag: Lag,
    rate: int,
    seconds: float,
    days_back: int,
    drain_timeout: float,
    pids: dict[str, int],
) -> dict[str, Any]:
    n = int(rate * seconds)
    enc = default_codec().encoder(ENVELOPE)
    items: list[tuple[str, bytes]] = []
    sim = simulator(n, seed=100 + days_back, days_back=days_back)
    for event_id, payload, fetched in sim.envelopes():
        items.append((event_id, enc(envelope_record(event_id, payload, fetched))))
        if len(items) == n:
            break
    z = s.pipeline.zones
    published: dict[str, float] = {}
    pub = Publisher(s, "simulator")
    samples: list[tuple[float, int, int]] = []  # (seconds since start, published, staging lag)
    cpu0 = {r: proc_cpu_seconds(p) or 0.0 for r, p in pids.items()}
    t0 = time.perf_counter()
    next_sample = 1.0
    i = 0
    while i < n:
        elapsed = time.perf_counter() - t0
        due = min(n, int(elapsed * rate) + 1)
        while i < due:
            event_id, value = items[i]
            published[event_id] = time.time()
            pub.publish_encoded(event_id.encode(), value)
            i += 1
        pub.flush(0)
        if elapsed >= next_sample:
            samples.append((round(elapsed, 2), i, lag()))
            next_sample += 1.0
        await asyncio.sleep(0.005)
    offered_for = time.perf_counter() - t0
    stats = pub.close()
    samples.append((round(time.perf_counter() - t0, 2), n, lag()))

    async def raw_rows() -> int:
        return await conn.fetchval(
            f"SELECT count(*) FROM {z.raw}.odds_envelopes WHERE event_id = ANY($1::text[])",
            list(published),
        )

    drained_at = None
    stable_since, last = time.monotonic(), -1
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline:
        staged = await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines")
        if staged != last:
            stable_since, last = time.monotonic(), staged
        backlog = lag()
        if backlog == 0 and await raw_rows() >= n and time.monotonic() - stable_since > 3:
            drained_at = time.perf_counter() - t0
            break
        samples.append((round(time.perf_counter() - t0, 2), n, backlog))
        await asyncio.sleep(0.5)
    cpu = {r: round((proc_cpu_seconds(p) or 0.0) - cpu0[r], 2) for r, p in pids.items()}
    ids = list(published)
    raw = await conn.fetch(
        f"SELECT event_id AS id, extract(epoch FROM loaded_at)::float8 AS at"
        f" FROM {z.raw}.odds_envelopes WHERE event_id = ANY($1::text[])",
        ids,
    )
    staged = await conn.fetch(
        f"SELECT source_event_id AS id, extract(epoch FROM loaded_at)::float8 AS at"
        f" FROM {z.staging}.odds_lines WHERE source_event_id = ANY($1::text[])",
        ids,
    )
    curated = await conn.fetch(
        f"SELECT ol.source_event_id AS id, extract(epoch FROM lv.loaded_at)::float8 AS at"
        f" FROM {z.curated}.line_velocity lv JOIN {z.staging}.odds_lines ol"
        " USING (game_id, book, market, side, event_time)"
        " WHERE ol.source_event_id = ANY($1::text[])",
        ids,
    )
    end_lag = [lg for t, _, lg in samples if t <= offered_for + 0.5][-1]
    # grew: more than one second of input still unprocessed when the offer ends, or no drain
    lag_grew = drained_at is None or end_lag > rate
    return {
        "offered_per_s": rate,
        "records": n,
        "published_per_s": round(n / offered_for),
        "publish_failed": stats.failed,
        "raw_zone": _latency(raw, published),
        "staging_zone": _latency(staged, published),
        "curated_zone": _latency(curated, published),
        "staging_lag_at_end_of_offer": end_lag,
        "lag_grew": lag_grew,
        "drained": drained_at is not None,
        "drain_seconds_after_offer": round(drained_at - offered_for, 1) if drained_at else None,
        "worker_cpu_seconds": cpu,
        "worker_peak_rss_mb": {r: proc_peak_rss_mb(p) for r, p in pids.items()},
        "lag_samples": samples,
    }


async def _run(
    settings: Settings,
    rates: list[int],
    seconds: float,
    drain_timeout: float,
    log_dir: Path,
    log: Any,
) -> dict[str, Any]:
    from core.admin import create_topics
    from sinks.migrate import migrate

    s = isolated_settings(settings)
    create_topics(s)
    await migrate(s)
    z = s.pipeline.zones
    lag = Lag(s)
    conn = await asyncpg.connect(s.postgres.dsn)
    results: list[dict[str, Any]] = []
    try:
        with worker_processes(s, ("staging", "features", "sink"), log_dir) as procs:
            pids = {r: p.pid for r, p in procs.items()}
            log("    warm-up: starting the three workers and waiting for a first batch...")
            pub = Publisher(s, "simulator")
            warm = 600
            for event_id, payload, fetched in simulator(warm, seed=1, days_back=40).envelopes():
                pub.publish(event_id, payload, fetched)
            pub.close()
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if any(p.poll() is not None for p in procs.values()):
                    raise RuntimeError(f"a worker exited during warm-up; see {log_dir}")
                raw = await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes")
                staged = await conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines")
                if raw >= warm and staged > 0 and lag() == 0:
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError("the workers did not process the warm-up batch in 240 s")
            for k, rate in enumerate(rates):
                log(f"    offering {rate:,} raw records/s for {seconds:.0f}s...")
                r = await _offer(s, conn, lag, rate, seconds, 41 + k, drain_timeout, pids)
                st = r["staging_zone"]
                log(
                    f"      staging rows p50 {st.get('p50_ms')} ms, p99 {st.get('p99_ms')} ms;"
                    f" lag grew: {r['lag_grew']}; drained: {r['drained']}"
                )
                results.append(r)
                if any(p.poll() is not None for p in procs.values()):
                    raise RuntimeError(f"a worker exited; see {log_dir}")
    finally:
        await conn.close()
        lag.close()
    sustained = [r["offered_per_s"] for r in results if not r["lag_grew"] and r["drained"]]
    return {
        "rates": results,
        "highest_rate_without_growing_lag": max(sustained) if sustained else None,
        "settings_prefix": s.kafka.topic_prefix,
    }


def end_to_end(
    settings: Settings,
    rates: list[int],
    seconds: float,
    drain_timeout: float,
    log_dir: Path,
    log: Any = print,
) -> dict[str, Any]:
    """Offer each rate in turn to one set of running workers; latency and lag per rate."""
    return asyncio.run(_run(settings, rates, seconds, drain_timeout, log_dir, log))
