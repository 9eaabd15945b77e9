"""Throughput of one feature worker process over Kafka (staged lines/s), for the benchmark.

The synthetic staged lines of ``bench.py`` are published to staging.odds_lines before the
worker starts; the worker (``oddsflow worker features``, one process) then reads the backlog.
The processing time is taken from the outputs' own Kafka timestamps (first to last curated
record), so the worker's start-up and the reader's polling are not counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.engine_rate import synthetic_lines
from bench.staged_input import publish_staged
from core.kafka_config import consumer_config
from core.settings import FeatureSettings, Settings
from core.topics import topic_name
from schemas.codec import default_codec
from streams.features.partitioned import PartitionFeatures
from streams.features.worker import IDLE_FLUSH_ENV, OUTPUTS


def _expected_outputs(lines: list[dict[str, Any]], settings: FeatureSettings) -> int:
    """How many curated records the worker must publish (the same code, in process)."""
    pf = PartitionFeatures(settings, 0)
    return len(pf.feed(("line", r) for r in lines))


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    env["ODDSFLOW_KAFKA__TOPIC_PREFIX"] = settings.kafka.topic_prefix
    env[IDLE_FLUSH_ENV] = "2"
    return env


def bench_feature_worker(
    settings: Settings,
    n: int = 100_000,
    timeout: float = 300,
    lines: list[dict[str, Any]] | None = None,
) -> dict:
    """Staged lines/s of one feature worker on ``n`` synthetic lines, or on ``lines`` (topics
    must exist); also the worker's peak RSS and CPU per 1,000 lines."""
    lines = synthetic_lines(n) if lines is None else lines
    n = len(lines)
    expected = _expected_outputs(lines, settings.features)
    encode = default_codec().encoder("oddsflow.staging.OddsLine")
    staged = [("staging.odds_lines", r["game_id"].encode(), encode(r)) for r in lines]
    publish_staged(settings, staged)
    names = [topic_name(settings, t) for t in OUTPUTS]
    consumer = Consumer(consumer_config(settings, f"{settings.kafka.topic_prefix}bench-reader"))
    parts = []
    for name in names:
        meta = consumer.list_topics(name, timeout=10).topics[name]
        parts += [TopicPartition(name, p, 0) for p in meta.partitions]
    consumer.assign(parts)
    proc = subprocess.Popen(
        [sys.executable, "-m", "oddsflow.cli", "worker", "features"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen = 0
    first = last = None
    counts: Counter[str] = Counter()
    peak_rss_kb = 0
    cpu_first = cpu_last = 0.0
    try:
        deadline = time.monotonic() + timeout
        while seen < expected and time.monotonic() < deadline and proc.poll() is None:
            for msg in consumer.consume(10_000, timeout=0.5):
                if msg.error() is not None:
                    continue
                ts = msg.timestamp()[1] / 1000.0
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
                counts[msg.topic()] += 1
                seen += 1
            if seen:  # the worker's CPU while it produced: start-up (imports, join) excluded
                cpu_last = _cpu_seconds(proc.pid)
                cpu_first = cpu_first or cpu_last
            peak_rss_kb = max(peak_rss_kb, _rss_kb(proc.pid))
    finally:
        consumer.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    took = (last - first) if first is not None and last is not None else float("nan")
    return {
        "lines": n,
        "outputs_expected": expected,
        "outputs_seen": seen,
        "seconds": round(took, 3),
        "lines_per_s": round(n / took) if took and took > 0 else None,
        "outputs_per_s": round(seen / took) if took and took > 0 else None,
        "worker_peak_rss_mb": round(peak_rss_kb / 1024, 1),
        # CPU-seconds per 1,000 lines: steadier than lines/s on a machine shared with others
        "worker_cpu_s_per_1k": round((cpu_last - cpu_first) / n * 1000, 3),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    """``python -m bench.features_worker [GAMES]``: the worker over the lines of a
    scaled season (``season.py``, finals left out: lines only), on the configured broker under a
    fresh topic prefix; prints JSON with the worker's peak RSS."""
    import json
    import sys

    from bench.season import season
    from core.admin import create_topics
    from core.isolation import isolated_settings
    from core.settings import load_settings
    from streams.features.partitioned import LINE

    games = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    settings = isolated_settings(load_settings(), kind="season")
    create_topics(settings)
    lines = [rec for kind, rec in season(games) if kind == LINE]
    result = bench_feature_worker(settings, lines=lines, timeout=1800)
    print(json.dumps({"games": games, **result}))


if __name__ == "__main__":
    main()
