"""`pipeline health` and `pipeline status` against a running sink worker."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.sink_rate import odds_line, produce_odds_lines
from core.settings import Settings
from oddsflow.ops.health import health, pipeline_status
from oddsflow.ops.lag import LagMonitor
from tests.helpers import wait_for, workers


async def _dead_letters(s: Settings, n: int) -> None:
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await conn.executemany(
            f"INSERT INTO {s.pipeline.zones.operational}.dead_letters (stage, origin_topic,"
            " origin_partition, origin_offset, key, original, error_class, reason, failed_at,"
            " kafka_topic, kafka_partition, kafka_offset) VALUES ('sink', 't', 0, $1, NULL,"
            " '\\x00', 'bad_marker', 'not ours', $2, 't', 0, $1)",
            [(i, datetime(2026, 6, 1, 12, 0, i, tzinfo=UTC)) for i in range(n)],
        )
    finally:
        await conn.close()


async def test_health_and_status_with_a_live_sink(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    monitor = LagMonitor(s, ["sink"], history=False)
    with workers(s, ("sink",), tmp_path):
        assert produce_odds_lines(s, [odds_line(i) for i in range(20)]) == 20
        await wait_for(
            monitor.sample,
            lambda gs: gs[0].members == 1 and gs[0].lag == 0 and gs[0].partitions,
            what="sink caught up",
        )
        report = await health(s, roles=("sink",))
        assert report.ok, report.verdict()
        assert [c.name for c in report.checks] == [
            "broker",
            "database",
            "workers",
            "lag",
            "dead letters",
        ]
        assert report.verdict().startswith("HEALTHY: broker Kafka at ")

        # every role is expected by default: staging and features are not running
        report = await health(s)
        assert not report.ok
        assert report.verdict().startswith(
            "UNHEALTHY: workers: no live staging/features worker (staging 0, features 0, sink 1)"
        )

        # 10 dead letters for 20 promoted rows: a third, over the 20 % the threshold allows
        await _dead_letters(s, 10)
        report = await health(s, roles=("sink",))
        assert report.verdict().startswith("UNHEALTHY: dead letters: 2.0/min over 5 min (33.3% of")

        # throughput while records arrive during the measuring interval
        def trickle() -> None:
            for batch in range(8):
                produce_odds_lines(
                    s, [odds_line(i) for i in range(20 + batch * 25, 45 + batch * 25)]
                )

        producer = threading.Thread(target=trickle)
        producer.start()
        try:
            stages = await pipeline_status(s, interval=2.0)
        finally:
            await asyncio.to_thread(producer.join)
    sink = {st.stage: st for st in stages}["sink"]
    assert len(sink.workers) == 1 and sink.workers[0].startswith("oddsflow@")
    assert sink.arrived_per_s > 0 and sink.consumed_per_s > 0
    assert sink.last_error is not None
    assert sink.last_error["error"] == "bad_marker: not ours"
    assert sink.last_error["at"].startswith("2026-06-01T12:00:09")
    assert {st.stage: len(st.workers) for st in stages} == {"staging": 0, "features": 0, "sink": 1}
