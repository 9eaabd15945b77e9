"""Publish-rate benchmarks of the collectors into the real raw topics (measure, report).

One run of each, timed the same way: the producer is made and connected before the clock (its
start-up is a fixed cost, not a rate), the clock stops when the last delivery report is in, and
rates count broker-acknowledged records only. ``oddsflow bench`` repeats them
(``bench/stages.py``, ``publish``) and reports medians.

- :func:`run_generate`: the simulator's encoded records, no Kafka: what generation costs.
- :func:`run_simulator`: ``oddsflow collect --source simulator`` (``publish_simulation``),
  generation included, from one process: issue #4's figure (target 100,000 records/s).
- :func:`run_pregenerated`: the generic ``Publisher.publish`` path (encode + produce) on
  envelopes made beforehand: the HTTP and file collectors' path, without the simulator.
- :func:`run_replay`: ``oddsflow collect --source file`` on the Pinnacle sample (read, sort,
  publish), as fast as possible.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.settings import Settings
from producers.collect import publish_simulation, simulator_request
from producers.envelope import EnvelopeLayout
from producers.history import file_records, replay
from producers.publisher import Publisher
from producers.simulator import Simulator

PINNACLE = "pinnacle/mlb2016_line_history_20games.csv"
GAMES, BOOKS = 30, 10  # two days' slates quoted by 10 books: 300 records a tick


def simulator_for(n: int, seed: int = 7) -> Simulator:
    """A simulator of at least ``n`` records (whole ticks: ``n`` rounded up to 300)."""
    ticks = max(1, -(-n // (BOOKS * GAMES)))
    return Simulator(seed=seed, games=GAMES, books=BOOKS, ticks=ticks, tick_seconds=30)


def _result(records: int, seconds: float, cpu: float, **extra: Any) -> dict[str, Any]:
    """One run: ``records`` acknowledged (or made, without Kafka) in ``seconds`` of wall time."""
    return {
        "records": records,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "per_second": round(records / seconds) if seconds > 0 else 0,
        **extra,
    }


def _connected(settings: Settings, source: str) -> Publisher:
    pub = Publisher(settings, source)
    if not pub.connect():
        raise RuntimeError(f"the broker did not answer for {pub.topic}")
    return pub


def run_generate(n: int, seed: int = 7) -> dict[str, Any]:
    """Simulate and encode ``n`` records as the collector does, without publishing them."""
    sim = simulator_for(n, seed)
    layout = EnvelopeLayout("simulator", request=simulator_request(sim))
    w0, c0 = time.perf_counter(), time.process_time()
    made = sum(1 for _ in sim.records(layout))
    return _result(made, time.perf_counter() - w0, time.process_time() - c0)


def run_simulator(settings: Settings, n: int, seed: int = 7) -> dict[str, Any]:
    """``oddsflow collect --source simulator`` of ``n`` records (rounded up to whole ticks)."""
    sim = simulator_for(n, seed)
    pub = _connected(settings, "simulator")
    w0, c0 = time.perf_counter(), time.process_time()
    stats = publish_simulation(settings, sim, progress=False, publisher=pub).stats
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return _result(stats.acked, w, c, failed=stats.failed)


def run_pregenerated(settings: Settings, n: int, seed: int = 8) -> dict[str, Any]:
    """``Publisher.publish`` (generic envelope encoding + produce) of envelopes made before."""
    sim = simulator_for(n, seed)
    envelopes = list(itertools.islice(sim.envelopes(), n))
    pub = _connected(settings, "simulator")
    w0, c0 = time.perf_counter(), time.process_time()
    for event_id, payload, fetched_at in envelopes:
        pub.publish(event_id, payload, fetched_at, key=sim.key_of(event_id), timestamp=fetched_at)
    stats = pub.close()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return _result(stats.acked, w, c, failed=stats.failed)


def run_replay(settings: Settings, path: Path | None = None) -> dict[str, Any]:
    """The Pinnacle sample through the file collector, as fast as possible (read+sort timed)."""
    path = path or settings.data_dir / PINNACLE
    pub = _connected(settings, "file")
    w0, c0 = time.perf_counter(), time.process_time()
    records = file_records(path)
    read = time.perf_counter() - w0
    res = replay(pub, records, now=lambda: datetime.now(UTC))
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return _result(
        res.stats.acked, w, c, file=path.name, in_file=len(records), failed=res.stats.failed,
        read_sort_seconds=round(read, 4),
    )  # fmt: skip


def bench_publish(settings: Settings, n: int = 200_000) -> dict[str, Any]:
    """One run each of generation only, simulator publish incl. generation, pre-generated.

    ``oddsflow bench`` prints this beside its stage table, whose rows (medians of 3, at least
    100k simulator records) are the figures to quote: a run of 10k records is mostly flush.
    """
    gen = run_generate(n)
    incl = run_simulator(settings, n)
    pre = run_pregenerated(settings, n)
    return {
        "records": incl["records"],
        "generate_per_second": gen["per_second"],
        "incl_generation_acked": incl["records"],
        "incl_generation_per_second": incl["per_second"],
        "pregenerated_acked": pre["records"],
        "pregenerated_per_second": pre["per_second"],
        "failed": incl["failed"] + pre["failed"],
        "note": "one run each; the stage table has the medians",
    }


def bench_replay(settings: Settings, path: Path | None = None) -> dict[str, Any]:
    """One run of :func:`run_replay` (the stage table has the median of 3)."""
    return {**run_replay(settings, path), "note": "one run; the stage table has the median"}


if __name__ == "__main__":
    import json
    import sys

    from bench.stages import isolated_settings
    from core.admin import create_topics
    from core.settings import load_settings

    s = isolated_settings(load_settings())  # never into the real raw topics
    create_topics(s)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(json.dumps({"publish": bench_publish(s, n), "replay": bench_replay(s)}, indent=2))
