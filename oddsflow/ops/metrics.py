"""``oddsflow metrics``: a Prometheus ``/metrics`` endpoint for the pipeline.

Measured at scrape time (at most once per ``min_interval`` seconds; scrapes in between get the
last text): consumer lag in records and seconds with the Burrow status and live members per
group, records per topic (end offsets: ``rate()`` of it is a stage's throughput), dead letters
by stage and class, the latest quality pass rate per source and stage, records consumed per
group (committed offsets summed: ``rate()`` of it is the stage's throughput) and an end-to-end
latency histogram per table.

Latency is publish → row: a row's ``loaded_at`` minus the broker timestamp of the record it came
from (its lineage: topic, partition, offset), so for ``raw_data`` it is the collector's publish
to the row, and for later zones the hop from the stage that published the record. Each row is
counted once: every scrape looks only at rows loaded after the newest one already counted (at
most ``LATENCY_SAMPLE`` per table per scrape, the newest; the first scrape looks back
``LATENCY_LOOKBACK``), and the record timestamps are read back from Kafka.

Binds 127.0.0.1 by default: it is an operator's endpoint, not a public one. The exposition is
``prometheus_client``'s (text format, or OpenMetrics when the scraper asks for it): each scrape
builds metric families from one sample of Kafka and Postgres (a custom collector on a registry of
its own), and the latency histogram is a ``prometheus_client.Histogram`` per table. Counter
samples carry the ``_total`` suffix Prometheus's naming rules give them
(``oddsflow_topic_records_total``); every other name is as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web
from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.argtypes import port_or_zero
from core.kafka_config import client_config
from core.offsets import admin_client, end_offsets
from core.settings import Settings
from core.topics import CATALOG, topic_name
from oddsflow.ops.burrow import Rules
from oddsflow.ops.lag import LagMonitor

#: Histogram buckets of the end-to-end latency, seconds.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
LATENCY_SAMPLE = 2000
LATENCY_LOOKBACK = timedelta(minutes=5)
log = logging.getLogger("oddsflow.metrics")
disable_created_metrics()  # no *_created series: nothing here has a meaningful creation time


class _Families(Collector):
    """The metric families of the last scrape, for ``generate_latest`` to render."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _family(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    help_text: str,
    labels: Sequence[str],
    rows: Iterable[tuple[Sequence[str], float]],
) -> Metric:
    """A gauge or counter family with one sample per (label values, value) row."""
    family = kind(name, help_text, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def _gauge(name: str, help_text: str, labels: Sequence[str], rows: Iterable) -> Metric:
    return _family(GaugeMetricFamily, name, help_text, labels, rows)


def _counter(name: str, help_text: str, labels: Sequence[str], rows: Iterable) -> Metric:
    return _family(CounterMetricFamily, name, help_text, labels, rows)


def record_timestamps(
    settings: Settings, wanted: dict[tuple[str, int], set[int]], timeout: float = 5.0
) -> dict[tuple[str, int, int], float]:
    """Broker timestamps (unix s) of the given offsets, read back with a group-less consumer.

    Each partition is read from its lowest wanted offset to its highest: the wanted offsets are
    the newest rows' lineage, so the ranges are short.
    """
    if not wanted:
        return {}
    consumer = Consumer(
        client_config(
            settings,
            **{
                "group.id": "oddsflow-metrics-probe",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "log_level": 0,
            },
        )
    )
    found: dict[tuple[str, int, int], float] = {}
    last = {tp: max(offs) for tp, offs in wanted.items()}
    done: set[tuple[str, int]] = set()
    try:
        consumer.assign([TopicPartition(t, p, min(offs)) for (t, p), offs in wanted.items()])
        deadline = time.monotonic() + timeout
        while len(done) < len(wanted) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                tp = (msg.topic(), msg.partition())
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        done.add(tp)
                    continue
                if msg.offset() in wanted.get(tp, ()):
                    _kind, ms = msg.timestamp()
                    if ms > 0:
                        found[(*tp, msg.offset())] = ms / 1000.0
                if msg.offset() >= last.get(tp, -1):
                    done.add(tp)
                    consumer.pause([TopicPartition(*tp)])
    finally:
        consumer.close()
    return found


def sink_tables(settings: Settings) -> list[str]:
    """Every table the sink writes (several topics can share one), qualified."""
    from sinks.mapping import mapping_for

    return sorted({mapping_for(settings, s).qualified_table for s in CATALOG})


class LatencyTracker:
    """Cumulative publish → row latency per table; each row observed once (see module doc)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.tables = sink_tables(settings)
        self.histogram = Histogram(
            "oddsflow_e2e_latency_seconds",
            "Publish to row in Postgres: loaded_at minus the broker timestamp of the row's record",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._after: dict[str, datetime] = {}  # newest loaded_at already counted, per table

    async def update(self, conn: asyncpg.Connection) -> None:
        rows_by_table: dict[str, Sequence[asyncpg.Record]] = {}
        for table in self.tables:
            after = self._after.get(table)
            rows = await conn.fetch(
                f"SELECT kafka_topic, kafka_partition, kafka_offset, loaded_at FROM {table}"
                " WHERE loaded_at > coalesce($1, now() - $2::interval)"
                " ORDER BY loaded_at DESC LIMIT $3",
                after, LATENCY_LOOKBACK, LATENCY_SAMPLE,
            )  # fmt: skip
            if rows:
                rows_by_table[table] = rows
                self._after[table] = rows[0]["loaded_at"]
        wanted: dict[tuple[str, int], set[int]] = {}
        for rows in rows_by_table.values():
            for r in rows:
                wanted.setdefault((r["kafka_topic"], r["kafka_partition"]), set()).add(
                    r["kafka_offset"]
                )
        stamps = await asyncio.to_thread(record_timestamps, self.settings, wanted)
        for table, rows in rows_by_table.items():
            h = self.histogram.labels(table)
            for r in rows:
                ts = stamps.get((r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]))
                if ts is not None:
                    h.observe(max(r["loaded_at"].timestamp() - ts, 0.0))


def _topic_records(settings: Settings) -> list[tuple[tuple[str], float]]:
    admin = admin_client(settings)
    md = admin.list_topics(timeout=5)
    tps = []
    for s in CATALOG:
        name = topic_name(settings, s.name)
        if name in md.topics and md.topics[name].error is None:
            tps.extend((name, p) for p in md.topics[name].partitions)
    totals: dict[str, int] = {}
    for (topic, _p), end in end_offsets(admin, tps).items():
        totals[topic] = totals.get(topic, 0) + max(end, 0)
    return [((t,), n) for t, n in sorted(totals.items())]


class MetricsCollector:
    """Samples Kafka and Postgres into metric families at scrape time (at most once per
    ``min_interval``); keeps the lag window and the latency histogram between scrapes."""

    def __init__(self, settings: Settings, min_interval: float = 1.0) -> None:
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=False)
        self._families = _Families()
        self.registry.register(self._families)
        self.monitor = LagMonitor(settings, rules=Rules())
        self.latency = LatencyTracker(settings, self.registry)
        self.min_interval = min_interval
        self._last: float | None = None
        self._lock = asyncio.Lock()
        self._kafka_error: str | None = None

    async def collect(self, encoder: Callable[[CollectorRegistry], bytes] = generate_latest) -> str:
        """The exposition text (``encoder``: the format the scraper asked for)."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._last >= self.min_interval:
                self._families.families = await self._collect()
                self._last = time.monotonic()
            return encoder(self.registry).decode()

    async def _collect(self) -> list[Metric]:
        up = 1.0
        try:
            groups = await self.monitor.sample()
            records = await asyncio.to_thread(_topic_records, self.settings)
            self._kafka_error = None
        except Exception as exc:  # KafkaUnavailable and the like: reported, never fatal
            up, groups, records = 0.0, [], []
            if str(exc) != self._kafka_error:  # once per distinct failure, not every scrape
                log.warning("metrics: Kafka at %s: %s", self.settings.kafka.bootstrap_servers, exc)
            self._kafka_error = str(exc)
        labels = ("group", "topic", "partition")
        pairs = [(g, p) for g in groups for p in g.partitions]
        families: list[Metric] = [
            _gauge("oddsflow_kafka_up", "1 when the broker answered this scrape", (), [((), up)]),
            _gauge(
                "oddsflow_consumer_lag_records", "Records not yet consumed by the group", labels,
                [((g.group, p.topic, str(p.partition)), p.lag) for g, p in pairs],
            ),
            _gauge(
                "oddsflow_consumer_lag_seconds",
                "Age of the oldest record the group has not consumed", labels,
                [((g.group, p.topic, str(p.partition)), p.lag_seconds or 0.0) for g, p in pairs],
            ),
            _gauge(
                "oddsflow_consumer_group_status",
                "Burrow-style status: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP",
                ("group", "status"),
                [((g.group, g.status.value), g.status.severity) for g in groups],
            ),
            _gauge(
                "oddsflow_consumer_group_members", "Live members of the group", ("group",),
                [((g.group,), g.members) for g in groups],
            ),
            _counter(
                "oddsflow_group_consumed_records",
                "Committed offsets summed over the group's partitions; rate() is the stage's"
                " throughput", ("group",),
                [((g.group,), sum(p.committed or 0 for p in g.partitions)) for g in groups],
            ),
            _counter(
                "oddsflow_topic_records",
                "End offsets summed over partitions; rate() is the topic's throughput",
                ("topic",), records,
            ),
        ]  # fmt: skip
        families += await self._database()
        return families

    async def _database(self) -> list[Metric]:
        ops = self.settings.pipeline.zones.operational
        try:
            conn = await asyncpg.connect(self.settings.postgres.dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return [_gauge("oddsflow_database_up", "1 when Postgres answered", (), [((), 0)])]
        try:
            dead = await conn.fetch(
                f"SELECT stage, error_class, count(*) AS n FROM {ops}.dead_letters"
                " GROUP BY stage, error_class ORDER BY stage, error_class"
            )
            quality = await conn.fetch(
                f"SELECT DISTINCT ON (source, stage) source, stage, pass_rate"
                f" FROM {ops}.quality ORDER BY source, stage, window_start DESC"
            )
            await self.latency.update(conn)
        finally:
            await conn.close()
        return [
            _gauge("oddsflow_database_up", "1 when Postgres answered", (), [((), 1)]),
            _counter(
                "oddsflow_dead_letters", "Dead letters stored, by stage and error class",
                ("stage", "error_class"),
                [((r["stage"], r["error_class"]), r["n"]) for r in dead],
            ),
            _gauge(
                "oddsflow_quality_pass_rate",
                "Latest quality report's pass rate per source and stage (0..1)",
                ("source", "stage"),
                [((r["source"], r["stage"]), r["pass_rate"]) for r in quality],
            ),
        ]  # fmt: skip


def make_app(settings: Settings, min_interval: float = 1.0) -> web.Application:
    """An aiohttp app serving ``/metrics`` (and ``/`` pointing at it)."""
    collector = MetricsCollector(settings, min_interval)

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        text = await collector.collect(encoder)
        return web.Response(body=text.encode(), headers={"Content-Type": content_type})

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="oddsflow metrics: /metrics\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    return app


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument(
        "--port", type=port_or_zero, default=9464, help="port to bind (0: any free port)"
    )


def run_metrics(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow metrics``: serve until stopped (1, one line, if the port is taken)."""
    from oddsflow.httpserve import serve

    return serve(
        make_app(settings),
        args.host,
        args.port,
        lambda url: print(f"serving {url}metrics", file=sys.stderr, flush=True),
    )
