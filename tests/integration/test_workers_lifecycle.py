"""Always-on workers: health endpoints, JSON logs, and a SIGTERM that commits what was consumed.

A staging and a sink worker are stopped with SIGTERM while records are flowing; each must exit
within 10 s, and its group's committed offsets must equal exactly what it consumed:
- staging (normalize): per raw partition, 1 + the highest raw offset named by the
  ``oddsflow-origin`` header of the records it wrote to the repartition topic;
- sink: the positions stored with the rows in ``operational.sink_offsets``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import asyncpg
from confluent_kafka import Consumer, TopicPartition

from core.kafka_config import consumer_config
from core.offsets import admin_client, committed_offsets, end_offsets
from core.settings import Settings
from core.topics import topic_name
from oddsflow.ops.lag import observe
from oddsflow.worker import HEALTH_PORT_ENV, LOG_FORMAT_ENV
from producers.collect import publish_simulation
from producers.simulator import Simulator
from streams.staging.batches import decode_batch, is_batch
from streams.staging.quality_report import deltas_topic
from streams.staging.worker import ORIGIN_HEADER, normalized_topic
from tests.conftest import settings_env
from tests.helpers import free_ports, wait_for, workers

TP = tuple[str, int]


@contextmanager
def spawn(
    settings: Settings, role: str, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """One ``oddsflow worker ROLE`` process; SIGKILLed afterwards if it is still running."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "oddsflow.cli", "-v", "worker", role],
            stdout=out, stderr=subprocess.STDOUT, env={**settings_env(settings), **env},
            start_new_session=True,
        )  # fmt: skip
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def sigterm(p: subprocess.Popen[bytes], within: float = 10.0) -> float:
    """SIGTERM ``p``; its exit status once gone, and how long that took."""
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker still running {within:.0f}s after SIGTERM") from None
    return time.monotonic() - started


async def get_json(port: int, path: str) -> tuple[int, dict]:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(3)) as r,
        ):
            return r.status, await r.json()
    except aiohttp.ClientError as exc:
        return 0, {"error": str(exc)}


def origins(settings: Settings, topic: str) -> dict[TP, int]:
    """Per raw partition, the highest raw offset any record of ``topic`` names as its origin."""
    consumer = Consumer(consumer_config(settings, f"{settings.kafka.topic_prefix}check"))
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp)[1] for tp in parts}
        consumer.assign(parts)
        out: dict[TP, int] = {}
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(parts):
            msg = consumer.poll(2.0)
            if msg is None:
                break  # only transaction markers left
            if msg.error():
                continue
            value = msg.value() or b""
            if is_batch(value):  # the batched agent: many raw records' bundles, lineage inside
                named = {origin for _k, _key, _i, origin, _n, _f, _r in decode_batch(value)}
            else:
                named = {dict(msg.headers())[ORIGIN_HEADER].decode()}
            for origin in named:
                raw_topic, raw_p, raw_off = origin.rsplit(":", 2)
                key = (raw_topic, int(raw_p))
                out[key] = max(out.get(key, -1), int(raw_off))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return out
    finally:
        consumer.close()


async def test_sigterm_commits_what_was_consumed_and_exits_quickly(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    # enough input that the (batched) worker is still busy when SIGTERM arrives
    sim = Simulator(seed=3, games=6, books=5, ticks=1000, tick_seconds=30)
    raw = topic_name(s, "raw.odds.simulator")
    port, sink_port = free_ports(2)  # port + 1 need not be free
    with (
        spawn(s, "staging", tmp_path / "staging.log",
              **{HEALTH_PORT_ENV: str(port), LOG_FORMAT_ENV: "json"}) as staging,
        spawn(s, "sink", tmp_path / "sink.log", **{HEALTH_PORT_ENV: str(sink_port)}) as sink,
    ):  # fmt: skip
        _status, live = await wait_for(
            lambda: get_json(port, "/live"), lambda r: r[0] == 200, timeout=60, what="/live"
        )
        assert live["role"] == "staging" and live["heartbeat_age_s"] < 10
        _status, ready = await wait_for(
            lambda: get_json(port, "/ready"), lambda r: r[0] == 200, timeout=60, what="/ready"
        )
        assert f"{raw}:0" in ready["assigned"] and ready["restoring"] is False
        sink_ready = await wait_for(
            lambda: get_json(sink_port, "/ready"), lambda r: r[0] == 200, timeout=60
        )
        assert sink_ready[1]["database"] == "ok" and sink_ready[1]["assigned"]

        assert publish_simulation(s, sim, progress=False).stats.acked == 6 * 5 * 1000
        admin = admin_client(s)
        group = f"{s.kafka.topic_prefix}oddsflow-staging"

        async def consumed() -> int:
            return sum(n for (t, _p), n in committed_offsets(admin, group).items() if t == raw)

        # mid-stream: some of the input committed, not all of it
        await wait_for(consumed, lambda n: n >= 300, timeout=90, what="staging under way")
        took = {"staging": sigterm(staging), "sink": sigterm(sink)}
    assert took["staging"] < 10 and took["sink"] < 10, took
    assert staging.returncode == 0 and sink.returncode == 0, (staging.returncode, sink.returncode)

    # staging: committed == 1 + last raw record whose output reached the repartition topic
    committed = committed_offsets(admin, group)
    written = origins(s, normalized_topic(s))
    raw_committed = {tp: off for tp, off in committed.items() if tp[0] == raw}
    assert raw_committed == {tp: off + 1 for tp, off in written.items()}
    ends = end_offsets(admin, list(raw_committed))
    assert sum(raw_committed.values()) < sum(ends.values()), "stopped mid-stream"

    # sink: Kafka's committed offsets == the positions committed with the rows
    sink_group = f"{s.kafka.topic_prefix}oddsflow-sink"
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        rows = await conn.fetch(
            f"SELECT topic, kafka_partition, next_offset FROM {s.pipeline.zones.operational}"
            ".sink_offsets WHERE consumer_group = $1",
            sink_group,
        )
    finally:
        await conn.close()
    stored = {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}
    assert stored and sum(stored.values()) > 0
    in_kafka = committed_offsets(admin, sink_group)
    assert set(in_kafka) == set(stored)
    for tp, offset in stored.items():
        # the staging topics are written in transactions: past the last row's offset sits its
        # commit marker, which the sink's idle commit steps over (the lag monitor's 0)
        assert 0 <= in_kafka[tp] - offset <= (0 if ".raw.odds." in tp[0] else 1), tp

    # structured logs: every staging line is a JSON object naming the role
    lines = [x for x in (tmp_path / "staging.log").read_text().splitlines() if x.startswith("{")]
    docs = [json.loads(x) for x in lines]
    assert docs and all(d["role"] == "staging" and d["level"] for d in docs)
    assert any("stopping" in d["message"] for d in docs)


async def test_a_clean_stop_leaves_the_staging_group_at_lag_0(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """After SIGTERM on a drained staging worker, its group is at lag 0 on the raw topic and on
    its own internal topics (repartition, quality deltas): nothing left between its own steps,
    so the ops page does not call a cleanly stopped group STOP. The quality deltas are written
    only by the stop itself here (no report falls due before it), the case the ops page showed."""
    pipeline = pipeline_settings.pipeline.model_copy(update={"quality_report_seconds": 3600})
    s = pipeline_settings.model_copy(update={"pipeline": pipeline})
    raw = topic_name(s, "raw.odds.simulator")
    internal = {normalized_topic(s), deltas_topic(s)}
    sim = Simulator(seed=4, games=2, books=3, ticks=20)

    def lags() -> dict[str, tuple[int, int]]:
        """Per topic of the group: (records not consumed, end offsets)."""
        (g,) = observe(s, ["staging"])
        out: dict[str, tuple[int, int]] = {}
        for p in g.partitions:
            lag, end = out.get(p.topic, (0, 0))
            out[p.topic] = (lag + p.lag, end + p.end)
        return out

    with workers(s, ("staging",), tmp_path / "logs") as procs:
        assert publish_simulation(s, sim, progress=False).stats.acked == 2 * 3 * 20
        await wait_for(  # drained: the raw input consumed and the internal topics worked off
            lambda: asyncio.to_thread(lags),
            lambda lag: (
                internal <= set(lag)
                and lag.get(raw, (1, 0))[0] == 0
                and not any(n for n, _end in lag.values())
            ),
            timeout=120,
            what="the staging worker drained",
        )
    assert procs["staging"].returncode == 0, procs["staging"].returncode
    after = await asyncio.to_thread(lags)
    assert raw in after and internal <= set(after), after
    assert after[deltas_topic(s)][1] > 0, f"the stop wrote no quality deltas: {after}"
    assert not any(n for n, _end in after.values()), f"lag left after a clean stop: {after}"
