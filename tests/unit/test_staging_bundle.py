"""Repartition bundles: all parts of one raw record for one game in one message, lineage inside.

The dedupe agent decides a bundle's parts in index order and names each output by its position
(offset, part index); a crash that cuts a bundle's outputs short must neither lose nor repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.dedupe import Deduplicator, PartitionState, parse_position, position_header
from streams.staging.processor import (
    Origin,
    StagingProcessor,
    bundles,
    decode_bundle,
    encode_bundle,
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
