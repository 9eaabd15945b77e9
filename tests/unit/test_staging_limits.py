"""Limits that keep every dead letter under the broker's message size (1 MiB).

A dead letter carries the original bytes and a reason; once a reason quoted a 600 KB team name
beside the 600 KB original, the dead letter was refused by the broker and the batch was lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
