"""The quality score: exact scores and reasons per case, and the gate in the processor (timeliness
judges the delay from fetch to publish, not the price's age; history replays pass)."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.settings import Settings
from producers.history import pinnacle_records
from schemas.codec import default_codec
from streams.staging.processor import QUALITY_GATE, Origin, StageResult, StagingProcessor
from streams.staging.quality import GAME, LINE, SPLIT, Quality, Timing, score, timing_of
from tests.fixtures_path import PINNACLE

T = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


def line(**kv: Any) -> dict[str, Any]:
    rec = {
        "game_id": "MLB-20260403-STL@PIT-1", "commence_time": T + 120 * MIN, "book": "pinnacle",
        "market": "moneyline", "side": "home", "line": None, "price_american": -110,
        "price_decimal": 1.9091, "implied_prob": 0.5238, "novig_prob": 0.5,
        "event_time": T, "ingested_at": T + MIN, "source": "simulator",
    }  # fmt: skip
    return {**rec, **kv}


def split(**kv: Any) -> dict[str, Any]:
    rec = {
        "game_id": "MLB-20260403-STL@PIT-1", "commence_time": T + 120 * MIN, "market": "total",
        "side": "over", "bets_pct": 55.0, "money_pct": 61.0, "bets": 55, "total_bets": 100,
        "event_time": T, "ingested_at": T + MIN,
    }  # fmt: skip
    return {**rec, **kv}


def game(**kv: Any) -> dict[str, Any]:
    rec = {
        "game_id": "MLB-20260403-STL@PIT-1", "commence_time": T + 120 * MIN,
        "status": "scheduled", "home_score": None, "away_score": None,
        "event_time": T, "ingested_at": T,
    }  # fmt: skip
    return {**rec, **kv}


LIVE = Timing()
HISTORY = Timing(history=True)


def late(minutes: int) -> Timing:
    """A raw record published ``minutes`` after it was fetched."""
    return Timing(minutes * MIN)


CASES = [
    # (what, schema, record, timing, score, reasons)
    ("clean line", LINE, line(), LIVE, 1.0, ()),
    ("one side", LINE, line(novig_prob=None), LIVE, 0.875, ("other side missing",)),
    (
        "one side, published 41 min late", LINE, line(novig_prob=None), late(41), 0.72,
        ("other side missing", "published 41 min after it was fetched"),
    ),
    ("published 10 min late is fresh", LINE, line(), late(10), 1.0, ()),
    ("published 35 min late", LINE, line(), late(35), 0.875,
     ("published 35 min after it was fetched",)),
    ("published 75 min late", LINE, line(), late(75), 0.75,
     ("published 75 min after it was fetched",)),
    (
        "a price unchanged for 3 hours, just fetched, is current", LINE,
        line(event_time=T - 180 * MIN), LIVE, 1.0, (),
    ),
    (
        "overround 1.15", LINE, line(implied_prob=0.575, novig_prob=0.5), LIVE, 0.9375,
        ("overround 1.150 above 1.10",),
    ),
    (
        "overround 1.20", LINE, line(implied_prob=0.6, novig_prob=0.5), LIVE, 0.875,
        ("overround 1.200 above 1.10",),
    ),
    (
        "after first pitch, published 35 min late", LINE,
        line(event_time=T + 120 * MIN, ingested_at=T + 155 * MIN), late(35), 0.75,
        ("quoted after first pitch", "published 35 min after it was fetched"),
    ),
    ("clean split", SPLIT, split(), LIVE, 1.0, ()),
    ("split without money %", SPLIT, split(money_pct=None), LIVE, 0.875, ("money % missing",)),
    ("a split 3.5 h old, just fetched, is current", SPLIT, split(event_time=T - 210 * MIN), LIVE,
     1.0, ()),
    (
        "split published 35 min late", SPLIT, split(), late(35), 0.875,
        ("published 35 min after it was fetched",),
    ),
    ("more bets than total", SPLIT, split(bets=120), LIVE, 0.75, ("120 bets of 100 in total",)),
    ("clean game", GAME, game(), LIVE, 1.0, ()),
    ("final without score", GAME, game(status="final", event_time=T + 300 * MIN,
                                       ingested_at=T + 300 * MIN), LIVE, 0.875,
     ("final without a score",)),
    (
        "in progress before first pitch", GAME, game(status="in_progress"), LIVE, 0.875,
        ("in_progress before first pitch",),
    ),
    (
        "final before first pitch, live", GAME,
        game(status="final", home_score=4, away_score=1), LIVE, 0.875,
        ("final before first pitch",),
    ),
    (
        "final before first pitch from a history file: the row carries the result", GAME,
        game(status="final", home_score=4, away_score=1), HISTORY, 1.0, (),
    ),
    (
        "in progress before first pitch from a history file is still odd", GAME,
        game(status="in_progress"), HISTORY, 0.875, ("in_progress before first pitch",),
    ),
    (
        "scheduled 2 h after first pitch", GAME,
        game(event_time=T + 240 * MIN, ingested_at=T + 240 * MIN), LIVE, 0.875,
        ("scheduled over an hour after first pitch",),
    ),
    (
        "game published an hour late", GAME, game(), late(60), 0.75,
        ("published 60 min after it was fetched",),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "record", "timing", "expected", "reasons"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_score_and_reasons(
    schema: str, record: dict[str, Any], timing: Timing, expected: float, reasons: tuple[str, ...]
) -> None:
    assert score(schema, record, timing) == Quality(expected, reasons)


@pytest.mark.parametrize(
    ("source", "published", "expected"),
    [
        ("odds_api", T + 41 * MIN, Timing(41 * MIN)),
        ("sbd", T - MIN, Timing()),  # published before fetched (clock skew): no delay
        ("odds_api", None, Timing(5 * MIN)),  # no Kafka timestamp: the processing time
        ("file", T + 9 * 365 * 24 * 60 * MIN, Timing(history=True)),  # replayed history
        ("simulator", T + 60 * MIN, Timing()),  # simulated time: a timeline of its own
    ],
)
def test_timing_of_a_raw_record(source: str, published: datetime | None, expected: Timing) -> None:
    assert timing_of(source, T, published, now=T + 5 * MIN) == expected


def test_refusal_names_score_threshold_and_reasons() -> None:
    q = score(LINE, line(novig_prob=None), late(41))
    assert q.refusal(0.8) == (
        "quality score 0.72 < 0.80: other side missing, published 41 min after it was fetched"
    )
    assert q.refusal(0.72) is None  # at the threshold passes
    assert Quality(1.0).refusal(0.8) is None


def odds_api_envelope(
    fetched: datetime,
    *,
    quoted: datetime | None = None,
    one_sided: bool = False,
    source: str = "odds_api",
) -> bytes:
    """One Odds API event at Pinnacle (moneyline), fetched at ``fetched`` and last changed by
    the book at ``quoted`` (default: at fetch); ``one_sided``: the away side is missing."""
    stamp = (quoted or fetched).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcomes = [{"name": "Pittsburgh Pirates", "price": -110}]
    if not one_sided:
        outcomes.append({"name": "St. Louis Cardinals", "price": -104})
    event = {
        "id": "ev-1", "commence_time": (fetched + 120 * MIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "home_team": "Pittsburgh Pirates", "away_team": "St. Louis Cardinals",
        "bookmakers": [{
            "key": "pinnacle", "last_update": stamp,
            "markets": [{"key": "h2h", "last_update": stamp, "outcomes": outcomes}],
        }],
    }  # fmt: skip
    return default_codec().encoder("oddsflow.raw.RawEnvelope")(
        {
            "event_id": "ev-1", "source": source, "fetched_at": fetched,
            "content_type": "application/json", "payload": json.dumps(event).encode(),
            "request": {},
        }
    )  # fmt: skip


def stale_one_sided_envelope(fetched: datetime) -> bytes:
    """A one-sided Odds API quote fetched at ``fetched``: published 41 minutes later it scores
    0.72 (other side missing, 41 minutes late) and is quarantined; its game passes (0.845)."""
    return odds_api_envelope(fetched, one_sided=True)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def classes(result: StageResult) -> list[str]:
    return [default_codec().decode(d)["error_class"] for d in result.dead]


def test_the_gate_quarantines_with_the_reason_and_counts() -> None:
    value = stale_one_sided_envelope(T)
    origin = Origin("raw.odds.odds_api", 0, 7, b"k", timestamp_ms=ms(T + 41 * MIN))
    gated = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + 42 * MIN)
    assert [s for s, _k, _v in gated.records] == ["oddsflow.staging.Game"]
    assert (gated.passed, gated.quarantined) == (1, 1)
    (dead,) = [default_codec().decode(d) for d in gated.dead]
    assert dead["error_class"] == QUALITY_GATE
    assert dead["reason"] == (
        "MLB-20260403-STL@PIT-1 book pinnacle moneyline home: quality score 0.72 < 0.80:"
        " other side missing, published 41 min after it was fetched"
    )
    assert dead["origin_offset"] == 7


def test_without_the_gate_nothing_is_quarantined_for_score() -> None:
    value = stale_one_sided_envelope(T)
    result = StagingProcessor(quality_threshold=None).process(
        Origin("raw.odds.odds_api", 0, 7, b"k", timestamp_ms=ms(T + 41 * MIN)), value, now=T
    )
    assert sorted(s for s, _k, _v in result.records) == [
        "oddsflow.staging.Game",
        "oddsflow.staging.OddsLine",
    ]
    assert (result.passed, result.quarantined, result.dead) == (2, 0, [])


def test_a_live_quote_unchanged_for_hours_passes() -> None:
    """The book last moved its price two hours before the poll: current, not stale."""
    value = odds_api_envelope(T, quoted=T - 120 * MIN)
    origin = Origin("raw.odds.odds_api", 0, 1, b"k", timestamp_ms=ms(T + 2 * SEC))
    result = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + 3 * SEC)
    assert sorted(s for s, _k, _v in result.records) == [
        "oddsflow.staging.Game", "oddsflow.staging.OddsLine", "oddsflow.staging.OddsLine",
    ]  # fmt: skip
    assert (result.passed, result.quarantined, result.dead) == (3, 0, [])


def test_a_quote_fetched_an_hour_before_it_was_published_is_quarantined() -> None:
    value = odds_api_envelope(T)
    origin = Origin("raw.odds.odds_api", 0, 1, b"k", timestamp_ms=ms(T + 60 * MIN))
    result = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + 61 * MIN)
    assert (result.records, result.passed, result.quarantined) == ([], 0, 3)
    reasons = [default_codec().decode(d)["reason"] for d in result.dead]
    assert reasons == [
        "MLB-20260403-STL@PIT-1 book pinnacle moneyline home: quality score 0.75 < 0.80:"
        " published 60 min after it was fetched",
        "MLB-20260403-STL@PIT-1 book pinnacle moneyline away: quality score 0.75 < 0.80:"
        " published 60 min after it was fetched",
        "MLB-20260403-STL@PIT-1 game state: quality score 0.75 < 0.80:"
        " published 60 min after it was fetched",
    ]
    assert classes(result) == [QUALITY_GATE] * 3


def test_without_a_kafka_timestamp_the_processing_time_is_the_publish_time() -> None:
    value = odds_api_envelope(T)
    origin = Origin("raw.odds.odds_api", 0, 1, b"k")
    late_run = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + 60 * MIN)
    assert late_run.quarantined == 3
    at_once = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + SEC)
    assert (at_once.passed, at_once.quarantined) == (3, 0)


def test_the_simulators_own_timeline_is_not_judged_against_the_wall_clock() -> None:
    value = odds_api_envelope(T, source="simulator")
    origin = Origin("raw.odds.simulator", 0, 1, b"k", timestamp_ms=ms(T + 60 * MIN))
    result = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T + 61 * MIN)
    assert (result.passed, result.quarantined, result.dead) == (3, 0, [])


def test_a_pinnacle_history_replay_passes_the_gate_with_the_default_config() -> None:
    """Every row of the Pinnacle sample, enveloped as `collect --source file` does (fetched_at =
    the replay's wall clock, years after the rows' recorded times; final scores on every row),
    through the processor with the default settings: nothing is quarantined."""
    settings = Settings()
    assert settings.pipeline.processing.quality_gates
    processor = StagingProcessor(quality_threshold=settings.pipeline.quality_threshold)
    encode = default_codec().encoder("oddsflow.raw.RawEnvelope")
    replayed_at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    totals: collections.Counter[str] = collections.Counter()
    for i, rec in enumerate(pinnacle_records(PINNACLE)):
        value = encode(
            {
                "event_id": rec.event_id, "source": "file", "fetched_at": replayed_at,
                "content_type": rec.content_type, "payload": rec.payload,
                "request": rec.request,
            }
        )  # fmt: skip
        origin = Origin("raw.odds.file", 0, i, rec.event_id.encode(), ms(replayed_at))
        result = processor.process(origin, value, now=replayed_at + SEC)
        totals["passed"] += result.passed
        totals["quarantined"] += result.quarantined
        totals.update(classes(result))
    # 10,958 lines and 1,906 game states; one pair's sum is impossible (validation, not quality)
    assert totals == {"passed": 10_958 + 1_906, "quarantined": 0, "implausible_market": 1}
