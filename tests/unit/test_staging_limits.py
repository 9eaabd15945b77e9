"""Limits at staging's door: every dead letter stays under the broker's message size (1 MiB),
staging parses what raw accepts (8 MiB), deep JSON is refused with a reason, an empty slate is
counted (issue #18).

A dead letter carries the original bytes and a reason; once a reason quoted a 600 KB team name
beside the 600 KB original, the dead letter was refused by the broker and the batch was lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.settings import Settings
from schemas.codec import default_codec
from streams.staging.processor import (
    MAX_REASON_CHARS,
    Origin,
    StagingProcessor,
    bounded_reason,
)

T = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
ORIGIN = Origin("raw.odds.odds_api", 1, 42, b"k")


def envelope(home: str, pad: int = 0) -> bytes:
    event = {
        "id": "ev-1", "sport_key": "baseball_mlb", "commence_time": "2026-04-03T23:05:00Z",
        "home_team": home, "away_team": "Boston Red Sox", "padding": "x" * pad,
        "bookmakers": [],
    }  # fmt: skip
    return default_codec().encoder("oddsflow.raw.RawEnvelope")(
        {
            "event_id": "ev-1", "source": "odds_api", "fetched_at": T,
            "content_type": "application/json", "payload": json.dumps(event).encode(),
            "request": {},
        }
    )  # fmt: skip


def test_a_payload_over_the_limit_is_dead_lettered_unparsed_with_the_original() -> None:
    value = envelope("New York Yankees", pad=20_000)
    result = StagingProcessor(max_payload_bytes=10_000).process(ORIGIN, value, now=T)
    assert result.whole_record_failed and result.records == []
    (dead,) = [default_codec().decode(d) for d in result.dead]
    assert dead["error_class"] == "oversized"
    assert dead["reason"].startswith(f"record of {len(value):,} bytes is over the 10,000-byte")
    assert dead["original"] == value and dead["origin_offset"] == 42


def test_a_payload_under_the_limit_is_parsed() -> None:
    value = envelope("New York Yankees", pad=1_000)
    result = StagingProcessor(max_payload_bytes=10_000).process(ORIGIN, value, now=T)
    reasons = [default_codec().decode(d)["error_class"] for d in result.dead]
    assert "oversized" not in reasons


def test_a_reason_quoting_huge_input_is_cut() -> None:
    value = envelope("Q" * 300_000)  # an "unknown team" whose name is 300 KB
    result = StagingProcessor().process(ORIGIN, value, now=T)
    (dead,) = [default_codec().decode(d) for d in result.dead]
    assert len(dead["reason"]) < MAX_REASON_CHARS + 40
    assert dead["reason"].endswith("more characters)")
    assert len(result.dead[0]) < len(value) + 1_000  # the original once, not twice


def test_bounded_reason_keeps_short_reasons_as_they_are() -> None:
    assert bounded_reason("missing price") == "missing price"
    cut = bounded_reason("x" * (MAX_REASON_CHARS + 10))
    assert cut == "x" * MAX_REASON_CHARS + "… (10 more characters)"


def raw(source: str, payload: bytes) -> bytes:
    return default_codec().encoder("oddsflow.raw.RawEnvelope")(
        {
            "event_id": "ev-1", "source": source, "fetched_at": T,
            "content_type": "application/json", "payload": payload, "request": {},
        }
    )  # fmt: skip


def test_staging_parses_what_raw_accepts_8_mib_by_default() -> None:
    assert StagingProcessor().max_payload_bytes == 8 * 1024 * 1024
    assert Settings().pipeline.processing.max_payload_bytes == 8 * 1024 * 1024
    value = envelope("New York Yankees", pad=1_200_000)  # over the former 512 KiB limit
    result = StagingProcessor().process(ORIGIN, value, now=T)
    assert [s for s, _k, _v in result.records] == ["oddsflow.staging.Game"]
    assert result.dead == []


def test_an_oversized_records_dead_letter_points_at_it_and_fits_the_broker() -> None:
    value = envelope("New York Yankees", pad=9 * 1024 * 1024)
    result = StagingProcessor().process(ORIGIN, value, now=T)
    (data,) = result.dead
    assert len(data) < 1_000  # the broker takes 1 MiB; the record is 9 MiB
    dead = default_codec().decode(data)
    assert (dead["error_class"], dead["original"], dead["part_index"]) == ("oversized", None, None)
    assert dead["reason"] == (
        f"record of {len(value):,} bytes is over the 8,388,608-byte limit ([pipeline.processing]"
        f" max_payload_bytes); not parsed (the {len(value):,} bytes are not copied here: read them"
        " at raw.odds.odds_api:1:42)"
    )
    assert (dead["origin_topic"], dead["origin_partition"], dead["origin_offset"]) == (
        "raw.odds.odds_api", 1, 42,
    )  # fmt: skip


def test_a_whole_record_failure_up_to_512_kib_keeps_its_original() -> None:
    value = envelope("Q" * 400_000)  # unknown team: the whole (single-event) record fails
    (dead,) = [default_codec().decode(d) for d in StagingProcessor().process(ORIGIN, value).dead]
    assert (dead["error_class"], dead["original"], dead["part_index"]) == (
        "unknown_team", value, None,
    )  # fmt: skip


@pytest.mark.parametrize("source", ["odds_api", "simulator", "sbd", "action_network"])
def test_deeply_nested_json_is_refused_with_a_reason(source: str) -> None:
    value = raw(source, b"[" * 100_000 + b"]" * 100_000)
    result = StagingProcessor().process(ORIGIN, value, now=T)
    (dead,) = [default_codec().decode(d) for d in result.dead]
    assert result.whole_record_failed and dead["error_class"] == "json_depth"
    assert dead["reason"].startswith("payload nests arrays or objects deeper than the decoder")


def test_deep_json_inside_a_well_formed_event_is_refused_with_a_reason() -> None:
    event = {
        "id": "ev-1", "commence_time": "2026-04-03T23:05:00Z", "home_team": "PIT",
        "away_team": "ATL", "bookmakers": [{"key": "fanduel", "last_update": "2026-04-03T16:00:00Z",
        "markets": [{"key": "h2h", "outcomes": "DEEP"}]}],
    }  # fmt: skip
    deep = b"[" * 100_000 + b"]" * 100_000
    value = raw("odds_api", json.dumps(event).encode().replace(b'"DEEP"', deep))
    (dead,) = [default_codec().decode(d) for d in StagingProcessor().process(ORIGIN, value).dead]
    assert dead["error_class"] == "json_depth"


@pytest.mark.parametrize(
    ("source", "payload"),
    [("odds_api", b"[]"), ("odds_api", b" [ ]\n"), ("sbd", b'{"games": []}'),
     ("action_network", b'{"games": []}')],
)  # fmt: skip
def test_an_empty_slate_is_counted_not_dead_lettered(source: str, payload: bytes) -> None:
    result = StagingProcessor(quality_threshold=0.8).process(ORIGIN, raw(source, payload), now=T)
    assert result.empty
    assert (result.records, result.dead, result.whole_record_failed) == ([], [], False)


@pytest.mark.parametrize(
    ("source", "payload", "error_class"),
    [("odds_api", b"{}", "missing_field"), ("odds_api", b"[{}]", "missing_field"),
     ("sbd", b"{}", "missing_field"), ("odds_api", b"[[]]", "wrong_shape")],
)  # fmt: skip
def test_a_payload_that_is_not_an_empty_slate_but_holds_nothing_usable_is_dead_lettered(
    source: str, payload: bytes, error_class: str
) -> None:
    result = StagingProcessor().process(ORIGIN, raw(source, payload), now=T)
    assert not result.empty and result.records == []
    assert [default_codec().decode(d)["error_class"] for d in result.dead] == [error_class]
