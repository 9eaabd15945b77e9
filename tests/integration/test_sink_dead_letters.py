"""Rows the database refuses go to operational.dead_letters with its reason; the rest is written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from confluent_kafka import Producer

from bench.sink_rate import odds_line, produce_odds_lines
from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import topic_name
from schemas.codec import MARKER, default_codec
from schemas.fastcodec import compile_encoder
from schemas.registry import default_registry
from sinks.connector import SinkConnector
from streams.staging.processor import Origin, StagingProcessor

TOPIC = "staging.odds_lines"


async def test_refused_rows_are_dead_lettered_with_the_reason_and_the_batch_goes_on(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    table = f"{s.pipeline.zones.staging}.odds_lines"
    ops = s.pipeline.zones.operational
    n, nul_at, check_at = 300, 17, 150
    records = [odds_line(i) for i in range(n)]
    records[nul_at]["source_event_id"] = "ev-\x00-nul"  # valid Avro, refused by Postgres
    records[check_at]["book"] = "forbidden"
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        await conn.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT no_forbidden_book CHECK (book <> 'forbidden')"
        )
        assert await asyncio.to_thread(produce_odds_lines, s, records) == n
        sink = SinkConnector(s, topics=[TOPIC])
        stats = await sink.run(asyncio.Event(), idle_exit=2.0)
        assert stats.consumed == n
        assert stats.inserted[table] == n - 2
        assert stats.dead_lettered == 2

        written = {r[0] for r in await conn.fetch(f"SELECT source_event_id FROM {table}")}
        assert len(written) == n - 2
        assert written == {
            r["source_event_id"] for i, r in enumerate(records) if i not in (nul_at, check_at)
        }
        dead = {
            r["reason"].split(" refused the row: ")[1].split(":")[0]: r
            for r in await conn.fetch(f"SELECT * FROM {ops}.dead_letters")
        }
        assert set(dead) == {"CharacterNotInRepertoireError", "CheckViolationError"}
        nul, check = dead["CharacterNotInRepertoireError"], dead["CheckViolationError"]
        assert "0x00" in nul["reason"] and "SQLSTATE 22021" in nul["reason"]
        assert "no_forbidden_book" in check["reason"] and "SQLSTATE 23514" in check["reason"]
        encode = default_codec().encoder("oddsflow.staging.OddsLine")
        for row, i in ((nul, nul_at), (check, check_at)):
            assert row["stage"] == "sink" and row["error_class"] == "db_rejected"
            assert row["origin_topic"] == topic_name(s, TOPIC)
            assert row["original"] == encode(records[i])  # the record, verbatim
            assert row["key"] == records[i]["game_id"].encode()
        # Lineage points at the refused records themselves.
        assert (
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE kafka_partition = $1 AND kafka_offset = $2",
                nul["origin_partition"],
                nul["origin_offset"],
            )
            == 0
        )
        # Position moved past them: nothing is retried or dead-lettered twice on restart.
        again = await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=1.5)
        assert again.consumed == 0
        assert await conn.fetchval(f"SELECT count(*) FROM {ops}.dead_letters") == 2
    finally:
        await conn.close()


async def test_undecodable_record_is_dead_lettered_not_retried(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    table = f"{s.pipeline.zones.staging}.odds_lines"
    ops = s.pipeline.zones.operational
    good = [odds_line(i) for i in range(20)]
    assert await asyncio.to_thread(produce_odds_lines, s, good) == 20
    producer = Producer(producer_config(s))
    producer.produce(topic_name(s, TOPIC), b"not avro at all", b"k")
    assert producer.flush(30) == 0
    stats = await SinkConnector(s, topics=[TOPIC]).run(asyncio.Event(), idle_exit=2.0)
    assert stats.consumed == 21 and stats.inserted[table] == 20 and stats.dead_lettered == 1
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        row = await conn.fetchrow(f"SELECT error_class, original FROM {ops}.dead_letters")
        assert row["error_class"] == "bad_marker" and row["original"] == b"not avro at all"
    finally:
        await conn.close()


async def test_staging_dead_letters_v1_and_v2_become_rows(pipeline_settings: Settings) -> None:
    """A refused part (v2: no copy, its part index) and a whole-record failure written with
    DeadLetter v1 (before the change) both become rows: original NULL or the bytes."""
    s = pipeline_settings
    ops = s.pipeline.zones.operational
    topic = topic_name(s, "dlq.staging")
    raw = topic_name(s, "raw.odds.simulator")
    at = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
    part = StagingProcessor().dead_letter(
        Origin(raw, 1, 77, b"k"), b"payload", "price_out_of_range", "ev1: |-99| < 100", at, 4
    )
    v1 = default_registry().history["oddsflow.operational.DeadLetter"][0]
    whole = compile_encoder(v1.parsed, MARKER + v1.fingerprint)(
        {
            "stage": "staging", "origin_topic": raw, "origin_partition": 0, "origin_offset": 5,
            "key": b"j", "original": b"\x00junk", "error_class": "bad_marker",
            "reason": "not a single-object Avro record", "failed_at": at,
        }
    )  # fmt: skip
    producer = Producer(producer_config(s))
    for value in (part, whole):
        producer.produce(topic, value, b"k")
    assert producer.flush(30) == 0
    stats = await SinkConnector(s, topics=["dlq.staging"]).run(asyncio.Event(), idle_exit=2.0)
    assert stats.consumed == 2 and stats.dead_lettered == 0
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        rows = await conn.fetch(
            f"SELECT origin_offset, original, part_index, error_class FROM {ops}.dead_letters"
            " ORDER BY origin_offset"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        (5, b"\x00junk", None, "bad_marker"),
        (77, None, 4, "price_out_of_range"),
    ]
