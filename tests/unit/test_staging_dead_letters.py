"""Dead letters that scale (issue #16): a refused part points at its raw record and part index,
without a copy; a whole-record failure keeps its original bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.codec import default_codec
from streams.staging.processor import Origin, StagingProcessor
from tests.unit.test_parsers_bad_input import event, ml
from tests.unit.test_staging_fastpath import envelope

NOW = datetime(2024, 5, 24, 16, 33, tzinfo=UTC)
ORIGIN = Origin("raw.odds.odds_api", 3, 1234, b"key-1")


def dead_letters(value: bytes) -> tuple[int, list[dict[str, Any]]]:
    result = StagingProcessor().process(ORIGIN, value, now=NOW)
    return len(result.records), [default_codec().decode(d) for d in result.dead]


def test_a_refused_part_points_at_its_raw_record_and_part_without_a_copy() -> None:
    # two events: the first's away price is out of range, the second is clean
    value = envelope([ml(-99, 138), event(id="ev2", commence_time="2024-05-24T23:40:00Z")])
    staged, dead = dead_letters(value)
    assert staged == 5  # home line of ev1, both lines of ev2, two game states
    assert len(dead) == 1
    d = dead[0]
    assert (d["original"], d["part_index"]) == (None, 5)  # part 5 of 6: after the staged parts
    assert (d["origin_topic"], d["origin_partition"], d["origin_offset"], d["key"]) == (
        "raw.odds.odds_api", 3, 1234, b"key-1",
    )  # fmt: skip
    assert d["error_class"] == "price_out_of_range"
    assert len(StagingProcessor().process(ORIGIN, value, now=NOW).dead[0]) < 300  # no payload


def test_part_indices_follow_the_staged_parts_in_order() -> None:
    bad = event()
    bad["bookmakers"].append({"key": "Some Book!", "markets": []})
    bad["bookmakers"].append("junk")
    staged, dead = dead_letters(envelope(bad))
    assert staged == 3  # two lines and the game state
    assert [(d["part_index"], d["error_class"], d["original"]) for d in dead] == [
        (3, "unknown_book", None), (4, "wrong_shape", None),
    ]  # fmt: skip


def test_a_whole_record_failure_keeps_its_original_bytes() -> None:
    value = envelope(event(home_team="Gotham Knights"), "simulator")
    staged, dead = dead_letters(value)
    assert staged == 0
    [d] = dead
    assert (d["error_class"], d["original"], d["part_index"]) == ("unknown_team", value, None)
    garbage = b"\x00\xffnot an envelope"
    [d] = dead_letters(garbage)[1]
    assert (d["error_class"], d["original"], d["part_index"]) == ("bad_marker", garbage, None)
