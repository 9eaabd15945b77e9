"""The /metrics endpoint: lag, group status, records per topic, dead letters, quality."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import aiohttp
import asyncpg
from aiohttp import web
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.sink_rate import odds_line, produce_odds_lines
from core.offsets import admin_client
from core.settings import Settings
from core.topics import topic_name
from oddsflow.ops.metrics import MetricsCollector, add_metrics_arguments, make_app
from sinks.connector import SinkConnector


def _samples(text: str) -> dict[str, float]:
    """Series as ``name{label="value",...}`` (labels in the order written here: sorted) -> value,
    parsed by prometheus_client's own parser (a malformed exposition fails here)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


async def _seed_database(s: Settings) -> None:
    ops = s.pipeline.zones.operational
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await conn.executemany(
            f"INSERT INTO {ops}.dead_letters (stage, origin_topic, origin_partition,"
            " origin_offset, key, original, error_class, reason, failed_at, kafka_topic,"
            " kafka_partition, kafka_offset) VALUES ('staging', 't', 0, $1, NULL, '\\x00',"
            " 'parse_error', 'bad', $2, 't', 0, $1)",
            [(i, at) for i in range(3)],
        )
        for minute, rate in ((0, 0.5), (1, 0.95)):  # the latest window counts
            await conn.execute(
                f"INSERT INTO {ops}.quality (source, stage, window_start, records_in, promoted,"
                " deduplicated, dead_lettered, pass_rate, emitted_at, kafka_topic,"
                " kafka_partition, kafka_offset) VALUES ('simulator', 'staging',"
                " $1, 20, 19, 0, 1, $2, $1, 't', 0, $3)",
                at.replace(minute=minute), rate, minute,
            )  # fmt: skip
    finally:
        await conn.close()


async def test_metrics_endpoint_reports_the_pipeline(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    topic = topic_name(s, "staging.odds_lines")
    group = f"{s.kafka.topic_prefix}oddsflow-sink"
    assert produce_odds_lines(s, [odds_line(i) for i in range(10)]) == 10
    admin = admin_client(s)
    reset = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 0) for p in (0, 1)])
    await asyncio.to_thread(admin.alter_consumer_group_offsets([reset])[group].result, 10)
    await _seed_database(s)

    runner = web.AppRunner(make_app(s, min_interval=0))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
    finally:
        await runner.cleanup()
    m = _samples(text)
    lag = {
        k: v
        for k, v in m.items()
        if k.startswith(f'oddsflow_consumer_lag_records{{group="{group}"')
    }  # labels sorted: group, partition, topic
    assert sum(lag.values()) == 10 and len(lag) == 2
    ages = [
        v for k, v in m.items() if k.startswith(f'oddsflow_consumer_lag_seconds{{group="{group}"')
    ]
    assert all(0 < a < 120 for a in ages if a) and any(ages)
    assert m[f'oddsflow_consumer_group_status{{group="{group}",status="STOP"}}'] == 4
    assert m[f'oddsflow_consumer_group_members{{group="{group}"}}'] == 0
    assert m[f'oddsflow_topic_records_total{{topic="{topic}"}}'] == 10  # a counter: _total
    assert m['oddsflow_dead_letters_total{error_class="parse_error",stage="staging"}'] == 3
    assert m['oddsflow_quality_pass_rate{source="simulator",stage="staging"}'] == 0.95
    assert m["oddsflow_kafka_up"] == 1 and m["oddsflow_database_up"] == 1
    assert "# TYPE oddsflow_consumer_lag_records gauge" in text
    assert "# TYPE oddsflow_topic_records_total counter" in text


def test_binds_loopback_by_default() -> None:
    parser = argparse.ArgumentParser()
    add_metrics_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 9464)


def _histogram(m: dict[str, float], name: str, table: str) -> tuple[dict[str, float], float, float]:
    """Cumulative buckets by ``le``, the sum and the count of one table's histogram."""
    label = f'table="{table}"'
    buckets = {
        k.split('le="')[1].split('"')[0]: v
        for k, v in m.items()
        if k.startswith(f"{name}_bucket{{") and k.endswith(f",{label}}}")
    }
    return buckets, m[f"{name}_sum{{{label}}}"], m[f"{name}_count{{{label}}}"]


async def test_end_to_end_latency_counts_each_row_once(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    table = f"{s.pipeline.zones.staging}.odds_lines"
    collector = MetricsCollector(s, min_interval=0)
    name = "oddsflow_e2e_latency_seconds"

    async def sink_all() -> None:
        sink = SinkConnector(s, topics=["staging.odds_lines"], group="latency-test")
        stats = await sink.run(asyncio.Event(), idle_exit=1.5)
        assert stats.consumed > 0

    started = time.time()
    assert produce_odds_lines(s, [odds_line(i) for i in range(10)]) == 10
    await sink_all()
    elapsed = time.time() - started
    first = _samples(await collector.collect())
    buckets, total, count = _histogram(first, name, table)
    assert count == 10 and buckets["+Inf"] == 10
    assert 0 <= total <= 10 * elapsed  # each row's latency is within the time the test took
    les = [float(k) for k in buckets if k != "+Inf"]
    assert les == sorted(les) and list(buckets.values()) == sorted(buckets.values())

    # the next scrape counts only rows loaded since: 5 new ones, nothing twice
    assert produce_odds_lines(s, [odds_line(i) for i in range(10, 15)]) == 5
    await sink_all()
    second = _samples(await collector.collect())
    assert _histogram(second, name, table)[2] == 15
    assert _samples(await collector.collect())[f'{name}_count{{table="{table}"}}'] == 15
