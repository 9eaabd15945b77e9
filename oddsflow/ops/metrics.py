"""``oddsflow metrics``: a Prometheus ``/metrics`` endpoint for the pipeline.

Measured at scrape time (at most once per ``min_interval`` seconds; scrapes in between get the
last text): consumer lag in records and seconds with the Burrow status and live members per
group, records per topic (end offsets: ``rate()`` of it is a stage's throughput), dead letters
by stage and class, and the latest quality pass rate per source and stage. Binds 127.0.0.1 by
default: it is an operator's endpoint, not a public one. Written in the text exposition format
directly, so no client library is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable

import asyncpg
from aiohttp import web

from oddsflow.ops.burrow import Rules
from oddsflow.ops.lag import LagMonitor, admin_client, end_offsets
from oddsflow.settings import Settings
from oddsflow.topics import CATALOG, topic_name

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """Exact integers (offsets run into the millions), floats in full precision."""
    v = float(value)
    return str(int(v)) if v.is_integer() else repr(v)


class Exposition:
    """Builds the text format: HELP and TYPE once per metric, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            series = f"{name}{{{label_text}}}" if labels else name
            self.lines.append(f"{series} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _topic_records(settings: Settings) -> list[tuple[dict[str, str], float]]:
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
    return [({"topic": t}, n) for t, n in sorted(totals.items())]


class MetricsCollector:
    """Samples Kafka and Postgres into the exposition text; keeps the lag window between scrapes."""

    def __init__(self, settings: Settings, min_interval: float = 1.0) -> None:
        self.settings = settings
        self.monitor = LagMonitor(settings, rules=Rules())
        self.min_interval = min_interval
        self._last: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    async def collect(self) -> str:
        async with self._lock:
            if self._last and time.monotonic() - self._last[0] < self.min_interval:
                return self._last[1]
            text = await self._collect()
            self._last = (time.monotonic(), text)
            return text

    async def _collect(self) -> str:
        out = Exposition()
        up = 1.0
        try:
            groups = await self.monitor.sample()
            records = await asyncio.to_thread(_topic_records, self.settings)
        except Exception as exc:  # KafkaUnavailable and the like: reported, never fatal
            up, groups, records = 0.0, [], []
            out.lines.append(f"# kafka unavailable: {_escape(str(exc))[:200]}")
        out.metric("oddsflow_kafka_up", "gauge", "1 when the broker answered this scrape",
                   [({}, up)])  # fmt: skip
        out.metric(
            "oddsflow_consumer_lag_records", "gauge", "Records not yet consumed by the group",
            [({"group": g.group, "topic": p.topic, "partition": str(p.partition)}, p.lag)
             for g in groups for p in g.partitions],
        )  # fmt: skip
        out.metric(
            "oddsflow_consumer_lag_seconds", "gauge",
            "Age of the oldest record the group has not consumed",
            [({"group": g.group, "topic": p.topic, "partition": str(p.partition)},
              p.lag_seconds or 0.0) for g in groups for p in g.partitions],
        )  # fmt: skip
        out.metric(
            "oddsflow_consumer_group_status", "gauge",
            "Burrow-style status: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP",
            [({"group": g.group, "status": g.status.value}, g.status.severity) for g in groups],
        )  # fmt: skip
        out.metric(
            "oddsflow_consumer_group_members", "gauge", "Live members of the group",
            [({"group": g.group}, g.members) for g in groups],
        )  # fmt: skip
        out.metric(
            "oddsflow_topic_records", "counter",
            "End offsets summed over partitions; rate() is the topic's throughput", records,
        )  # fmt: skip
        await self._database(out)
        return out.text()

    async def _database(self, out: Exposition) -> None:
        ops = self.settings.pipeline.zones.operational
        try:
            conn = await asyncpg.connect(self.settings.postgres.dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            out.metric("oddsflow_database_up", "gauge", "1 when Postgres answered", [({}, 0)])
            return
        try:
            dead = await conn.fetch(
                f"SELECT stage, error_class, count(*) AS n FROM {ops}.dead_letters"
                " GROUP BY stage, error_class ORDER BY stage, error_class"
            )
            quality = await conn.fetch(
                f"SELECT DISTINCT ON (source, stage) source, stage, pass_rate"
                f" FROM {ops}.quality ORDER BY source, stage, window_start DESC"
            )
        finally:
            await conn.close()
        out.metric("oddsflow_database_up", "gauge", "1 when Postgres answered", [({}, 1)])
        out.metric(
            "oddsflow_dead_letters", "counter", "Dead letters stored, by stage and error class",
            [({"stage": r["stage"], "error_class": r["error_class"]}, r["n"]) for r in dead],
        )  # fmt: skip
        out.metric(
            "oddsflow_quality_pass_rate", "gauge",
            "Latest quality report's pass rate per source and stage (0..1)",
            [({"source": r["source"], "stage": r["stage"]}, r["pass_rate"]) for r in quality],
        )  # fmt: skip


def make_app(settings: Settings, min_interval: float = 1.0) -> web.Application:
    """An aiohttp app serving ``/metrics`` (and ``/`` pointing at it)."""
    collector = MetricsCollector(settings, min_interval)

    async def metrics(_request: web.Request) -> web.Response:
        text = await collector.collect()
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="oddsflow metrics: /metrics\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    return app


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9464, help="port to bind")


def run_metrics(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow metrics``: serve until stopped."""
    print(f"serving http://{args.host}:{args.port}/metrics", file=sys.stderr, flush=True)
    web.run_app(make_app(settings), host=args.host, port=args.port, print=None)
    return 0
