"""Repartition messages: every staged part of a turn for one partition, with lineage and facts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.batches import BatchWriter, decode_batch, is_batch
from streams.staging.dedupe import encode_fact, fact_of, parse_position, position_header
from streams.staging.processor import Origin, StageResult, StagingProcessor

START = datetime(2026, 4, 2, 17, 0, tzinfo=UTC)


def _results() -> list[tuple[str, StageResult]]:
    processor, codec = StagingProcessor(), default_codec()
    sim = Simulator(seed=11, games=2, books=3, ticks=6, tick_seconds=30, start=START)
    out = []
    for i, (event_id, payload, fetched) in enumerate(sim.envelopes()):
        envelope = codec.encoder("oddsflow.raw.RawEnvelope")(
            {
                "event_id": event_id, "source": "simulator", "fetched_at": fetched,
                "content_type": "application/json", "payload": payload, "request": {},
            }
        )  # fmt: skip
        origin = f"raw.odds.simulator:0:{i}"
        out.append((origin, processor.process(Origin("raw.odds.simulator", 0, i, None), envelope)))
    return out


def test_position_header_round_trip_and_legacy_offsets() -> None:
    assert parse_position(position_header(17, 3)) == (17, 3)
    assert parse_position(b"17") == (17, 0)
    assert parse_position("17:0") == (17, 0)


def test_batch_round_trip_keeps_every_part_with_its_lineage_and_fact() -> None:
    results = _results()
    writer = BatchWriter(2)
    for origin, result in results:
        writer.add(origin, result)
    got: dict[tuple[str, int], tuple[bytes, int, bytes, bytes]] = {}
    for partition, value in writer.messages():
        assert is_batch(value) and not is_batch(b"\xc3\x01abc")
        parts = decode_batch(value)
        assert [k for k, *_ in parts] == list(range(len(parts)))  # running index k
        for _k, key, i, origin, n, fact, frame in parts:
            assert writer.partition(key) == partition
            got[(origin, i)] = (key, n, fact, frame)
    decode = default_codec().decode
    want = {
        (origin, i): (key, len(r.records) + len(r.dead), encode_fact(fact_of(s, decode(v))), v)
        for origin, r in results
        for i, (s, key, v) in enumerate(r.records)
    }
    assert got == want
    writer.add(*results[0])
    value = writer.messages()[0][1]
    with pytest.raises(ValueError):
        decode_batch(value[:-1])


def test_an_empty_raw_record_travels_as_a_bundle_without_parts() -> None:
    writer = BatchWriter(1)
    origin, result = _results()[0]
    writer.add_empty("raw.odds.odds_api:1:7")
    writer.add(origin, result)
    ((_p, value),) = writer.messages()
    empties: list[str] = []
    parts = decode_batch(value, empties)
    assert empties == ["raw.odds.odds_api:1:7"]
    assert [(o, i) for _k, _key, i, o, *_ in parts] == [
        (origin, i) for i in range(len(result.records))
    ]
    assert [k for k, *_ in parts] == list(range(len(parts)))  # the empty bundle takes no k


def test_the_partition_is_the_default_partitioner_of_the_key() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    writer = BatchWriter(6)
    for key in (b"2026-04-02-NYY-BOS-1", b"x", b"2026-09-30-LAD-SF-2"):
        assert writer.partition(key) == DefaultPartitioner()(key, list(range(6)), [])


def test_batch_messages_are_cut_at_the_size_limit_and_keep_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streams.staging.batches as batches

    monkeypatch.setattr(batches, "BATCH_BYTES", 4096)
    results = _results()
    writer = BatchWriter(1)
    for origin, result in results:
        writer.add(origin, result)
    messages = writer.messages()
    assert len(messages) > 3
    assert all(len(value) <= 4096 for _p, value in messages)
    got = [(o, i) for _p, v in messages for _k, _key, i, o, _n, _f, _fr in decode_batch(v)]
    assert got == [(origin, i) for origin, r in results for i in range(len(r.records))]
