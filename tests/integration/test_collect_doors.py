"""An always-on poller against the hostile corpus, into the real broker: what it can store is on
the raw topic (8 MiB bodies lz4-compressed, read back by librdkafka and by aiokafka, the staging
worker's client), what it refused is on dlq.collect where ``oddsflow dlq list`` shows it, and
the poller kept polling throughout.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from core.kafka_config import record_max_bytes
from core.settings import Settings
from core.topics import raw_topic, topic_name
from oddsflow.ops.dlq import dead_letters
from producers.http import BodyLimits, HttpCollector, RetryPolicy, payload_event_id, source_spec
from producers.publisher import Publisher
from producers.refusals import DeadLetters
from schemas.codec import default_codec
from tests.conftest import settings_env
from tests.fixtures_path import ODDS_API
from tests.helpers import stop_after_polls, wait_for
from tests.support.loopback import LoopbackSource, random_json
from tests.support.rawtopic import read_raw

MB = 1 << 20
PATH = "/v4/sports/baseball_mlb/odds"
CORPUS = [
    "nested:100000",
    f"json:{8 * MB - 64 * 1024}",  # stored: 8 MiB that lz4 cannot shrink
    f"stream:{64 * MB}",
    "binary:4096",
    "reset",
    "503",
    "ok",  # stored: the real capture
]


async def read_with_aiokafka(settings: Settings, topic: str, n: int) -> list[bytes]:
    """The first ``n`` values of ``topic``, as another client (aiokafka, pure Python) reads them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=record_max_bytes(settings),
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got: list[bytes] = []
        async with asyncio.timeout(60):
            while len(got) < n:
                batches = await consumer.getmany(timeout_ms=1000)
                got += [m.value for msgs in batches.values() for m in msgs if m.value]
        return got
    finally:
        await consumer.stop()


async def test_the_poller_stores_what_it_can_and_records_every_refusal(settings: Settings) -> None:
    capture = ODDS_API.read_bytes()
    server = LoopbackSource({PATH: capture}, script=list(CORPUS))
    await server.start()
    publisher = Publisher(settings, "odds_api")
    refusals = DeadLetters(settings, "odds_api")
    assert publisher.connect()
    refusals.connect()
    holder: list[HttpCollector] = []
    try:
        async with aiohttp.ClientSession() as session:
            c = HttpCollector(
                source_spec("odds_api", server.base_url, min_interval=0.0),
                publisher,
                session,
                RetryPolicy(attempts=1, timeout=5.0),
                api_key="test-key",
                sleep=stop_after_polls(len(CORPUS), holder),
                limits=BodyLimits.of(settings),
                refusals=refusals,
            )
            holder.append(c)
            assert await c.run(interval=0.0) == 0
    finally:
        stats = publisher.close()
        assert refusals.flush() == 0
        await server.close()
    assert [p.outcome for p in c.polls] == [
        "refused", "published", "refused", "failed", "failed", "failed", "published",
    ]  # fmt: skip
    assert stats.acked == 2 and stats.failed == 0
    assert refusals.written == 5 and refusals.failed == 0

    big = random_json(8 * MB - 64 * 1024)
    stored = sorted(read_raw(settings, "odds_api"), key=lambda r: -len(r["payload"]))
    assert [r["payload"] for r in stored] == [big, capture]
    for r in stored:  # the Kafka timestamp is the fetch time
        assert r["_timestamp"] == int(r["fetched_at"].timestamp() * 1000)
        assert r["event_id"] == payload_event_id("odds_api", r["payload"])
    topic = topic_name(settings, raw_topic("odds_api"))
    values = await read_with_aiokafka(settings, topic, 2)  # lz4 batches through cramjam
    payloads = sorted((default_codec().decode(v)["payload"] for v in values), key=len)
    assert payloads == [capture, big]

    letters = await dead_letters(settings, stage="collect")
    assert [(d.stage, d.source) for d in letters] == [("collect", "odds_api")] * 5
    classes = [d.error_class for d in letters]
    assert classes == [
        "json_too_deep", "payload_too_large", "not_text", "connection_error", "server_error",
    ]  # fmt: skip
    deep, large, binary, reset, storm = letters
    assert deep.original == b"[" * 100_000 + b"]" * 100_000  # kept: within the size limit
    assert large.original == b"" and "8,388,608-byte limit" in large.reason  # never its bytes
    assert len(binary.original) == 4096
    assert reset.original == storm.original == b""
    assert all(d.failed_at.isoformat() in d.reason for d in letters)

    out = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "dlq", "list", "--stage", "collect", "--json"],
        capture_output=True, text=True, timeout=60, env=settings_env(settings),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    groups = {g["error_class"]: g for g in json.loads(out.stdout)}
    assert set(groups) == set(classes)
    assert {g["source"] for g in groups.values()} == {"odds_api"}
    assert all(g["count"] == 1 and g["stage"] == "collect" for g in groups.values())


async def test_the_cli_poller_keeps_polling_through_bodies_it_refuses(settings: Settings) -> None:
    """``oddsflow collect --source odds_api --interval 1s`` as a user runs it: the deep and the
    64 MiB bodies are refused and recorded, the capture stored, and SIGTERM ends it cleanly."""
    server = LoopbackSource(
        {PATH: ODDS_API.read_bytes()}, script=["nested:100000", f"stream:{64 * MB}", "ok"]
    )
    await server.start()
    argv = ["collect", "--source", "odds_api", "--interval", "1s", "--base-url", server.base_url]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oddsflow.cli", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**settings_env(settings), "ODDS_API_KEY": "test-key"},
    )  # fmt: skip
    try:

        async def polls() -> int:
            assert proc.returncode is None, "the poller ended by itself"
            return len(server.hits)

        await wait_for(polls, lambda n: n >= 4, timeout=60, interval=0.2, what="four polls")
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert "odds_api: 1 raw records acknowledged by the broker (0 failed)" in out.decode()
    assert "2 refusals recorded on dlq.collect" in out.decode()
    assert [r["payload"] for r in read_raw(settings, "odds_api")] == [ODDS_API.read_bytes()]
    letters = await dead_letters(settings, stage="collect")
    assert [d.error_class for d in letters] == ["json_too_deep", "payload_too_large"]
