"""Publish-rate benchmarks of the collectors into the real raw topics (measure, report).

``bench_publish``: simulator snapshots into ``raw.odds.simulator`` from one process, both
end to end (simulate + encode + produce + flush) and publish only (payloads made beforehand),
so a slow simulator and a slow producer path can be told apart. ``bench_replay``: the Pinnacle
sample through the file collector as fast as possible. Rates count broker-acknowledged records.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oddsflow.settings import Settings
from producers.publisher import Publisher
from producers.replay import file_records, replay
from producers.simulator import Simulator

PINNACLE = "pinnacle/mlb2016_line_history_20games.csv"


def _simulator_for(n: int, seed: int = 7) -> Simulator:
    books, games = 10, 30
    ticks = max(1, -(-n // (books * games)))
    return Simulator(seed=seed, games=games, books=books, ticks=ticks, tick_seconds=30)


def bench_publish(settings: Settings, n: int = 200_000) -> dict[str, Any]:
    """Simulator records per second into the raw topic (acked), from one process."""
    sim = _simulator_for(n)
    pub = Publisher(settings, "simulator")
    t0 = time.perf_counter()
    for event_id, payload, fetched_at in itertools.islice(sim.envelopes(), n):
        pub.publish(event_id, payload, fetched_at)
    end_to_end = pub.close()
    t1 = time.perf_counter()

    envelopes = list(itertools.islice(_simulator_for(n, seed=8).envelopes(), n))
    pub = Publisher(settings, "simulator")
    t2 = time.perf_counter()
    for event_id, payload, fetched_at in envelopes:
        pub.publish(event_id, payload, fetched_at)
    publish_only = pub.close()
    t3 = time.perf_counter()
    return {
        "records": n,
        "end_to_end_acked": end_to_end.acked,
        "end_to_end_seconds": round(t1 - t0, 3),
        "end_to_end_per_second": round(end_to_end.acked / (t1 - t0)),
        "publish_only_acked": publish_only.acked,
        "publish_only_seconds": round(t3 - t2, 3),
        "publish_only_per_second": round(publish_only.acked / (t3 - t2)),
        "failed": end_to_end.failed + publish_only.failed,
    }


def bench_replay(settings: Settings, path: Path | None = None) -> dict[str, Any]:
    """The Pinnacle sample through the file collector, as fast as possible (read+sort included)."""
    path = path or settings.data_dir / PINNACLE
    t0 = time.perf_counter()
    records = file_records(path)
    t1 = time.perf_counter()
    res = replay(Publisher(settings, "file"), records, now=lambda: datetime.now(UTC))
    t2 = time.perf_counter()
    return {
        "file": path.name,
        "records": len(records),
        "acked": res.stats.acked,
        "failed": res.stats.failed,
        "read_sort_seconds": round(t1 - t0, 4),
        "publish_seconds": round(t2 - t1, 4),
        "per_second": round(res.stats.acked / (t2 - t0)),
    }


if __name__ == "__main__":
    import json
    import sys

    from oddsflow.admin import create_topics
    from oddsflow.bench.stages import isolated_settings
    from oddsflow.settings import load_settings

    s = isolated_settings(load_settings())  # never into the real raw topics
    create_topics(s)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(json.dumps({"publish": bench_publish(s, n), "replay": bench_replay(s)}, indent=2))
