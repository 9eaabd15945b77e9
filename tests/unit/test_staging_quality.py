"""The quality score: exact scores and reasons per case, and the gate in the processor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import default_codec
from streams.staging.processor import QUALITY_GATE, Origin, StagingProcessor
from streams.staging.quality import GAME, LINE, SPLIT, Quality, score

T = datetime(2026, 4, 3, 17, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


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


CASES = [
    # (what, schema, record, score, reasons)
    ("clean line", LINE, line(), 1.0, ()),
    ("one side", LINE, line(novig_prob=None), 0.875, ("other side missing",)),
    (
        "one side, 41 min old", LINE, line(novig_prob=None, ingested_at=T + 41 * MIN), 0.72,
        ("other side missing", "quote 41 min older than fetch"),
    ),
    ("10 min old is fresh", LINE, line(ingested_at=T + 10 * MIN), 1.0, ()),
    ("35 min old", LINE, line(ingested_at=T + 35 * MIN), 0.875, ("quote 35 min older than fetch",)),
    ("75 min old", LINE, line(ingested_at=T + 75 * MIN), 0.75, ("quote 75 min older than fetch",)),
    (
        "overround 1.15", LINE, line(implied_prob=0.575, novig_prob=0.5), 0.9375,
        ("overround 1.150 above 1.10",),
    ),
    (
        "overround 1.20", LINE, line(implied_prob=0.6, novig_prob=0.5), 0.875,
        ("overround 1.200 above 1.10",),
    ),
    (
        "after first pitch, 35 min old", LINE,
        line(event_time=T + 120 * MIN, ingested_at=T + 155 * MIN), 0.75,
        ("quoted after first pitch", "quote 35 min older than fetch"),
    ),
    ("clean split", SPLIT, split(), 1.0, ()),
    ("split without money %", SPLIT, split(money_pct=None), 0.875, ("money % missing",)),
    ("59 min old split is current", SPLIT, split(ingested_at=T + 59 * MIN), 1.0, ()),
    (
        "3.5 h old split", SPLIT, split(ingested_at=T + 210 * MIN), 0.875,
        ("split 210 min older than fetch",),
    ),
    ("more bets than total", SPLIT, split(bets=120), 0.75, ("120 bets of 100 in total",)),
    ("clean game", GAME, game(), 1.0, ()),
    ("final without score", GAME, game(status="final", event_time=T + 300 * MIN,
                                       ingested_at=T + 300 * MIN), 0.875,
     ("final without a score",)),
    (
        "in progress before first pitch", GAME, game(status="in_progress"), 0.875,
        ("in_progress before first pitch",),
    ),
    (
        "scheduled 2 h after first pitch", GAME,
        game(event_time=T + 240 * MIN, ingested_at=T + 240 * MIN), 0.875,
        ("scheduled over an hour after first pitch",),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "record", "expected", "reasons"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_score_and_reasons(
    schema: str, record: dict[str, Any], expected: float, reasons: tuple[str, ...]
) -> None:
    assert score(schema, record) == Quality(expected, reasons)


def test_refusal_names_score_threshold_and_reasons() -> None:
    q = score(LINE, line(novig_prob=None, ingested_at=T + 41 * MIN))
    assert q.refusal(0.8) == (
        "quality score 0.72 < 0.80: other side missing, quote 41 min older than fetch"
    )
    assert q.refusal(0.72) is None  # at the threshold passes
    assert Quality(1.0).refusal(0.8) is None


def stale_one_sided_envelope(fetched: datetime) -> bytes:
    """One Odds API event whose only market has one outcome, quoted 41 minutes before fetch."""
    quoted = (fetched - 41 * MIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "id": "ev-stale", "commence_time": (fetched + 120 * MIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "home_team": "Pittsburgh Pirates", "away_team": "St. Louis Cardinals",
        "bookmakers": [{
            "key": "pinnacle", "last_update": quoted,
            "markets": [{"key": "h2h", "last_update": quoted,
                         "outcomes": [{"name": "Pittsburgh Pirates", "price": -110}]}],
        }],
    }  # fmt: skip
    return default_codec().encoder("oddsflow.raw.RawEnvelope")(
        {
            "event_id": "ev-stale", "source": "simulator", "fetched_at": fetched,
            "content_type": "application/json", "payload": json.dumps(event).encode(),
            "request": {},
        }
    )  # fmt: skip


def test_the_gate_quarantines_with_the_reason_and_counts() -> None:
    value = stale_one_sided_envelope(T)
    origin = Origin("raw.odds.simulator", 0, 7, b"k")
    gated = StagingProcessor(quality_threshold=0.8).process(origin, value, now=T)
    assert [s for s, _k, _v in gated.records] == ["oddsflow.staging.Game"]
    assert (gated.passed, gated.quarantined) == (1, 1)
    (dead,) = [default_codec().decode(d) for d in gated.dead]
    assert dead["error_class"] == QUALITY_GATE
    assert dead["reason"].endswith(
        "home: quality score 0.72 < 0.80: other side missing, quote 41 min older than fetch"
    )
    assert dead["original"] == value and dead["origin_offset"] == 7


def test_without_the_gate_nothing_is_quarantined_for_score() -> None:
    value = stale_one_sided_envelope(T)
    result = StagingProcessor(quality_threshold=None).process(
        Origin("raw.odds.simulator", 0, 7, b"k"), value, now=T
    )
    assert sorted(s for s, _k, _v in result.records) == [
        "oddsflow.staging.Game",
        "oddsflow.staging.OddsLine",
    ]
    assert (result.passed, result.quarantined, result.dead) == (2, 0, [])
