"""Per-minute quality reports: a staging worker on a known input with bad records reports exactly
the counts the pure processor and de-duplicator give, in the topic and, via the sink, in Postgres.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from core.offsets import admin_client
from core.settings import Settings
from core.topics import topic_name
from oddsflow.cli import build_parser
from oddsflow.ops.dlq import read_topic
from oddsflow.ops.lag import describe
from oddsflow.processes import running_workers
from producers.publisher import Publisher
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.dedupe import Deduplicator
from streams.staging.processor import Origin, StagingProcessor
from tests.helpers import wait_for, workers

START = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
ENVELOPE = "oddsflow.raw.RawEnvelope"
COUNTS = ("records_in", "promoted", "deduplicated", "dead_lettered")


def _envelope(event_id: str, payload: bytes, fetched: datetime) -> bytes:
    return default_codec().encoder(ENVELOPE)(
        {
            "event_id": event_id, "source": "simulator", "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": {},
        }
    )  # fmt: skip


def _inputs() -> list[tuple[str, bytes]]:
    """(key, raw bytes) in publish order: a small market, three bad records, redeliveries."""
    sim = Simulator(seed=11, games=2, books=2, ticks=6, tick_seconds=30, start=START)
    good = [
        (sim.key_of(eid), _envelope(eid, payload, fetched))
        for eid, payload, fetched in sim.envelopes()
    ]
    _eid, payload, fetched = next(iter(sim.envelopes()))
    event = json.loads(payload)
    event["away_team"] = "Metropolis Meteors"
    bad = [
        ("bad-1", b"\x00\xffnot avro"),
        ("bad-2", _envelope("meteors", json.dumps(event).encode(), fetched)),
        ("bad-3", _envelope("empty", b"", fetched)),
    ]
    return good[:10] + bad + good[10:] + good[:4]


def _expected(inputs: list[tuple[str, bytes]]) -> Counter[str]:
    processor, codec, dedupe = StagingProcessor(), default_codec(), Deduplicator({})
    c: Counter[str] = Counter()
    for i, (_key, value) in enumerate(inputs):
        result = processor.process(Origin("raw.odds.simulator", 0, i, None), value)
        emitted = sum(dedupe.check(s, codec.decode(v)).emit for s, _k, v in result.records)
        c["promoted"] += emitted
        c["deduplicated"] += len(result.records) - emitted
        c["dead_lettered"] += len(result.dead)
    c["records_in"] = c["promoted"] + c["deduplicated"] + c["dead_lettered"]
    return c


def _topic_reports(s: Settings) -> dict[tuple[str, datetime], dict]:
    """The latest report per (source, minute) on operational.quality."""
    decode = default_codec().decode
    latest: dict[tuple[str, datetime], dict] = {}
    for msg in read_topic(s, topic_name(s, "operational.quality")):
        r = decode(msg.value())
        latest[(r["source"], r["window_start"])] = r
    return latest


def _sums(rows: list[dict]) -> Counter[str]:
    return Counter({k: sum(r[k] for r in rows) for k in COUNTS})


def _with_interval(s: Settings) -> Settings:
    pipeline = s.pipeline.model_copy(update={"quality_report_seconds": 0.5})
    return s.model_copy(update={"pipeline": pipeline})


def _publish(s: Settings, inputs: list[tuple[str, bytes]]) -> None:
    publisher = Publisher(s, "simulator")
    for key, value in inputs:
        publisher.publish_encoded(key.encode(), value)
    assert publisher.flush() == 0


async def _loaded(s: Settings, expected: Counter[str], timeout: float) -> list[dict]:
    """The quality table's rows once they sum to ``expected`` (the sink loads the reports)."""

    async def rows() -> list[dict]:
        conn = await asyncpg.connect(s.postgres.dsn)
        try:
            found = await conn.fetch(f"SELECT * FROM {s.pipeline.zones.operational}.quality")
        finally:
            await conn.close()
        return [dict(r) for r in found]

    return await wait_for(rows, lambda r: _sums(r) == expected, timeout, what="the quality rows")


def _check_rows(rows: list[dict]) -> None:
    for r in rows:
        assert r["source"] == "simulator" and r["stage"] == "staging"
        assert r["records_in"] == r["promoted"] + r["deduplicated"] + r["dead_lettered"]
        assert r["pass_rate"] == (r["promoted"] + r["deduplicated"]) / r["records_in"]
        assert r["window_start"].second == 0 and r["window_start"].microsecond == 0


async def test_reports_count_every_part_and_reach_the_table(
    pipeline_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = _with_interval(pipeline_settings)
    inputs = _inputs()
    expected = _expected(inputs)
    assert expected["dead_lettered"] == 3 and expected["deduplicated"] >= 4
    _publish(s, inputs)

    async def reported() -> Counter[str]:
        return _sums(list(_topic_reports(s).values()))

    with workers(s, ("staging", "sink"), tmp_path / "run"):
        got = await wait_for(reported, lambda c: c == expected, timeout=120, what="the reports")
        rows = await _loaded(s, expected, timeout=60)
    assert got == expected
    _check_rows([*_topic_reports(s).values(), *rows])

    args = build_parser().parse_args(["pipeline", "quality"])
    assert await asyncio.to_thread(args.func, args, s) == 0  # stopped workers: balanced
    out = capsys.readouterr().out.split("pass rate per source")[1]
    rate = (expected["promoted"] + expected["deduplicated"]) / expected["records_in"]
    assert f"last hour {rate:>7.1%}" in out and "simulator" in out


async def test_two_staging_workers_report_one_total_per_source_and_minute(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = _with_interval(pipeline_settings)
    inputs = _inputs()
    expected = _expected(inputs)
    group = f"{s.kafka.topic_prefix}oddsflow-staging"

    async def members() -> int:
        return len(describe(admin_client(s), [group], 10)[group].members)

    with (
        running_workers(s, ("staging",), tmp_path, log_name=lambda r: f"{r}-a.log"),
        running_workers(s, ("staging", "sink"), tmp_path, log_name=lambda r: f"{r}-b.log"),
    ):
        await wait_for(members, lambda n: n == 2, timeout=90, what="two staging members")
        _publish(s, inputs)
        rows = await _loaded(s, expected, timeout=120)
    _check_rows(rows)
