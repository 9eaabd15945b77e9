"""Repartition bundles and batch messages: staged parts with their lineage (and facts) inside.

The dedupe agent decides a bundle's parts in index order and names each output by its position
(offset, part index); a crash that cuts a bundle's outputs short must neither lose nor repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.dedupe import (
    Deduplicator,
    PartitionState,
    decode_fact,
    encode_fact,
    fact_of,
    parse_position,
    position_header,
)
from streams.staging.processor import (
    BatchWriter,
    Origin,
    StagingProcessor,
    bundles,
    decode_batch,
    decode_bundle,
    encode_bundle,
    is_batch,
    is_bundle,
)

START = datetime(2026, 4, 2, 17, 0, tzinfo=UTC)


def _results() -> list[tuple[str, object]]:
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


def test_bundle_round_trip_keeps_origin_n_and_parts() -> None:
    parts = [(0, b"\xc3\x01abc"), (2, b"\xc3\x01" + bytes(300)), (5, b"")]
    value = encode_bundle("raw.odds.sbd:3:1234", 7, parts)
    assert is_bundle(value) and not is_bundle(b"\xc3\x01abc")
    assert decode_bundle(value) == ("raw.odds.sbd:3:1234", 7, parts)
    with pytest.raises(ValueError):
        decode_bundle(value[:-1])
    with pytest.raises(ValueError):
        decode_bundle(b"\xc3\x01abc")


def test_bundles_group_parts_by_game_and_number_them_as_processed() -> None:
    for origin, result in _results():
        got = bundles(origin, result)
        keys = [k for _s, k, _v in result.records]
        assert [k for k, _b in got] == list(dict.fromkeys(keys))  # one bundle per game
        flat = []
        for key, value in got:
            o, n, parts = decode_bundle(value)
            assert o == origin and n == len(result.records) + len(result.dead)
            assert [i for i, _f in parts] == sorted(i for i, _f in parts)
            flat += [(i, key, frame) for i, frame in parts]
        assert sorted(flat) == [(i, k, v) for i, (_s, k, v) in enumerate(result.records)]


def test_position_header_round_trip_and_legacy_offsets() -> None:
    assert parse_position(position_header(17, 3)) == (17, 3)
    assert parse_position(b"17") == (17, 0)
    assert parse_position("17:0") == (17, 0)


def test_a_crash_inside_a_bundle_neither_loses_nor_repeats() -> None:
    """Outputs cut after any part of a bundle; the rebuilt state re-decides only the rest."""
    codec = default_codec()
    registry = codec.registry
    # the repartition log of one partition: bundles at offsets 0, 1, 2, ...
    log = [v for origin, result in _results() for _k, v in bundles(origin, result)]

    def parts(value: bytes) -> list[tuple[int, str, dict]]:
        return [
            (i, registry.by_fingerprint[bytes(f[2:10])].name, codec.decode(f))
            for i, f in decode_bundle(value)[2]
        ]

    d = Deduplicator({})
    expected = [
        (off, i, s, r) for off, v in enumerate(log) for i, s, r in parts(v) if d.check(s, r).emit
    ]
    assert len(expected) > 20
    for cut in range(0, len(expected), 3):
        survived = expected[:cut]  # a prefix of the emissions, possibly mid-bundle
        state = PartitionState()
        for off, i, s, r in survived:
            state.load(s, r, parse_position(position_header(off, i)))
        restart = survived[-1][0] if survived else 0  # committed offset: not past the outputs
        emitted = list(survived)
        for off in range(restart, len(log)):
            for i, s, r in parts(log[off]):
                if state.check(s, r, off, i).emit:
                    emitted.append((off, i, s, r))
        assert emitted == expected, cut


def _batch_log(per_message: int) -> list[bytes]:
    """The repartition log of partition 0 when normalize writes batch messages."""
    writer, log = BatchWriter(1), []
    for n, (origin, result) in enumerate(_results(), start=1):
        if result.records:
            writer.add(origin, result)
        if n % per_message == 0:
            log += [value for _p, value in writer.messages()]
    return log + [value for _p, value in writer.messages()]


def test_batch_round_trip_keeps_every_part_with_its_lineage_and_fact() -> None:
    results = _results()
    writer = BatchWriter(2)
    for origin, result in results:
        writer.add(origin, result)
    got: dict[tuple[str, int], tuple[bytes, int, bytes, bytes]] = {}
    for partition, value in writer.messages():
        assert is_batch(value) and not is_bundle(value)
        parts = decode_batch(value)
        assert [k for k, *_ in parts] == list(range(len(parts)))  # running index k
        for _k, key, i, origin, n, fact, frame in parts:
            assert writer.partition(key) == partition
            got[(origin, i)] = (key, n, fact, frame)
    want = {
        (origin, i): (
            key,
            len(r.records) + len(r.dead),
            encode_fact(fact_of(s, codec_decode(v))),
            v,
        )
        for origin, r in results
        for i, (s, key, v) in enumerate(r.records)
    }
    assert got == want
    with pytest.raises(ValueError):
        decode_batch(writer_value(results)[:-1])


def codec_decode(frame: bytes) -> dict:
    return default_codec().decode(frame)


def writer_value(results: list[tuple[str, object]]) -> bytes:
    writer = BatchWriter(1)
    for origin, result in results:
        writer.add(origin, result)
    ((_p, value),) = writer.messages()
    return value


def test_the_partition_is_the_default_partitioner_of_the_key() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    writer = BatchWriter(6)
    for key in (b"2026-04-02-NYY-BOS-1", b"x", b"2026-09-30-LAD-SF-2"):
        assert writer.partition(key) == DefaultPartitioner()(key, list(range(6)), [])


def test_a_crash_inside_a_batch_message_neither_loses_nor_repeats() -> None:
    """Outputs cut after any part of a batch message; the rebuilt state re-decides the rest."""
    log = _batch_log(per_message=5)
    registry = default_codec().registry

    def parts(value: bytes) -> list[tuple[int, str, bytes]]:
        return [
            (k, registry.by_fingerprint[frame[2:10]].name, fact)
            for k, _key, _i, _o, _n, fact, frame in decode_batch(value)
        ]

    d = Deduplicator({})
    expected = [
        (off, k, s, f)
        for off, v in enumerate(log)
        for k, s, f in parts(v)
        if d.check_fact(decode_fact(f)).emit
    ]
    assert len(expected) > 20
    frames = {
        (off, k): frame
        for off, v in enumerate(log)
        for k, _key, _i, _o, _n, _f, frame in decode_batch(v)
    }
    for cut in range(0, len(expected), 3):
        survived = expected[:cut]
        state = PartitionState()
        for off, k, s, _f in survived:  # the rebuild reads the decoded outputs
            state.load(s, codec_decode(frames[(off, k)]), parse_position(position_header(off, k)))
        restart = survived[-1][0] if survived else 0
        emitted = list(survived)
        for off in range(restart, len(log)):
            for k, s, f in parts(log[off]):
                if state.check_fact(s, decode_fact(f), off, k).emit:
                    emitted.append((off, k, s, f))
        assert emitted == expected, cut


def test_batch_messages_are_cut_at_the_size_limit_and_keep_the_order(monkeypatch) -> None:
    import streams.staging.processor as processor

    monkeypatch.setattr(processor, "BATCH_BYTES", 4096)
    results = _results()
    writer = BatchWriter(1)
    for origin, result in results:
        writer.add(origin, result)
    messages = writer.messages()
    assert len(messages) > 3
    assert all(len(value) <= 4096 for _p, value in messages)
    got = [(o, i) for _p, v in messages for _k, _key, i, o, _n, _f, _fr in decode_batch(v)]
    assert got == [(origin, i) for origin, r in results for i in range(len(r.records))]
