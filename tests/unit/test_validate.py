"""Validator: per-line checks, two-way plausibility, no-vig, splits and games."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.domain.odds import american_to_decimal
from core.formats import Parsed
from streams.staging.validate import (
    pair_and_novig,
    validate_game,
    validate_line,
    validate_parsed,
    validate_split,
)

T = datetime(2024, 5, 24, 16, 31, tzinfo=UTC)


def line(**over: Any) -> dict[str, Any]:
    price = over.pop("price", -110)
    rec: dict[str, Any] = {
        "game_id": "MLB-20240524-ATL@PIT-1",
        "commence_time": datetime(2024, 5, 24, 22, 40, tzinfo=UTC),
        "home_team": "PIT",
        "away_team": "ATL",
        "book": "fanduel",
        "market": "moneyline",
        "side": "home",
        "line": None,
        "price_american": price,
        "price_decimal": american_to_decimal(price) if abs(price) >= 100 else 1.5,
        "implied_prob": 1 / american_to_decimal(price) if abs(price) >= 100 else 0.6,
        "novig_prob": None,
        "event_time": T,
        "ingested_at": T + timedelta(seconds=30),
        "source": "odds_api",
        "source_event_id": "e1",
    }
    rec.update(over)
    return rec


def test_valid_line_passes() -> None:
    assert validate_line(line()) is None
    assert validate_line(line(market="total", side="over", line=8.5)) is None
    assert validate_line(line(market="spread", side="away", line=-1.5)) is None
    assert validate_line(line(market="spread", side="away", line=0)) is None


@pytest.mark.parametrize(
    ("over", "error_class"),
    [
        ({"price": 99}, "price_out_of_range"),
        ({"price": -50}, "price_out_of_range"),
        ({"price": 100_001}, "price_out_of_range"),
        ({"price_american": -110.0}, "invalid_price"),
        ({"price_american": "-110"}, "invalid_price"),
        ({"price_decimal": math.nan}, "non_finite_price"),
        ({"implied_prob": math.inf}, "non_finite_price"),
        ({"market": "total", "side": "over", "line": 8.25}, "off_grid_line"),
        ({"market": "total", "side": "over", "line": 7.3}, "off_grid_line"),
        ({"market": "spread", "side": "home", "line": -1.75}, "off_grid_line"),
        ({"market": "total", "side": "over", "line": math.nan}, "non_finite_line"),
        ({"market": "total", "side": "over", "line": None}, "non_finite_line"),
        ({"market": "total", "side": "over", "line": 104.0}, "implausible_line"),
        ({"market": "total", "side": "over", "line": 0.0}, "implausible_line"),
        ({"market": "spread", "side": "home", "line": 12.5}, "implausible_line"),
        ({"line": 1.5}, "implausible_line"),
        ({"market": "props"}, "unknown_market"),
        ({"side": "over"}, "unknown_side"),
        ({"market": "total", "side": "home", "line": 8.5}, "unknown_side"),
        ({"event_time": T + timedelta(hours=1)}, "future_timestamp"),
        ({"event_time": datetime(2024, 5, 24, 16, 31)}, "bad_timestamp"),
        ({"event_time": "2024-05-24T16:31:00Z"}, "bad_timestamp"),
        ({"commence_time": None}, "bad_timestamp"),
    ],
)
def test_line_rejects(over: dict[str, Any], error_class: str) -> None:
    r = validate_line(line(**over))
    assert r is not None
    assert r.error_class == error_class
    assert "MLB-20240524-ATL@PIT-1" in r.reason


def test_missing_field() -> None:
    rec = line()
    del rec["price_american"]
    r = validate_line(rec)
    assert r is not None and r.error_class == "missing_field"


def test_future_tolerance_and_now() -> None:
    rec = line(event_time=T + timedelta(minutes=4))
    assert validate_line(rec) is None
    assert validate_line(rec, future_tolerance=timedelta(0)) is not None
    r = validate_line(line(), now=T - timedelta(hours=1))
    assert r is not None and r.error_class == "future_timestamp"


@pytest.mark.parametrize(
    ("away", "home", "ok"),
    [(-110, -110, True), (-164, 138, True), (100, 100, True), (120, 120, False),
     (-300, -300, False), (-200, 150, True), (110, 105, False)],
)  # fmt: skip
def test_two_way_sum(away: int, home: int, ok: bool) -> None:
    lines = [line(side="away", price=away), line(side="home", price=home)]
    kept, rejects = pair_and_novig(lines)
    if ok:
        assert len(kept) == 2 and rejects == []
        assert kept[0]["novig_prob"] + kept[1]["novig_prob"] == pytest.approx(1.0)
    else:
        assert kept == []
        assert [r.error_class for r in rejects] == ["implausible_market"]


def test_novig_values() -> None:
    kept, _ = pair_and_novig([line(side="away", price=-110), line(side="home", price=102)])
    assert kept[0]["novig_prob"] == pytest.approx(0.514114, abs=1e-6)
    assert kept[1]["novig_prob"] == pytest.approx(0.485886, abs=1e-6)


def test_no_pair_no_novig() -> None:
    kept, rejects = pair_and_novig(
        [
            line(side="away", price=-110),  # alone at its event time
            line(side="home", price=-110, event_time=T - timedelta(minutes=1)),
            line(side="home", price=-110, book="draftkings"),
            line(market="spread", side="home", line=-1.5, price=150),
            line(market="spread", side="away", line=-1.5, price=-170),  # not the same line
            line(market="total", side="over", line=8.5, price=-110, book="x"),
            line(market="total", side="under", line=9.0, price=-110, book="x"),
        ]
    )
    assert rejects == []
    assert all(x["novig_prob"] is None for x in kept)


def split(**over: Any) -> dict[str, Any]:
    rec = {
        "game_id": "MLB-20240524-ATL@PIT-1",
        "commence_time": datetime(2024, 5, 24, 22, 40, tzinfo=UTC),
        "home_team": "PIT",
        "away_team": "ATL",
        "source": "sbd",
        "book": "consensus",
        "market": "moneyline",
        "side": "home",
        "bets_pct": 66.0,
        "money_pct": None,
        "bets": 10,
        "total_bets": 20,
        "event_time": T,
        "ingested_at": T,
        "source_event_id": "e1",
    }
    rec.update(over)
    return rec


@pytest.mark.parametrize(
    ("over", "error_class"),
    [
        ({}, None),
        ({"bets_pct": 100.5}, "invalid_split"),
        ({"bets_pct": -1}, "invalid_split"),
        ({"money_pct": math.nan}, "invalid_split"),
        ({"bets_pct": None}, "invalid_split"),
        ({"bets": -3}, "invalid_split"),
        ({"total_bets": 2.5}, "invalid_split"),
        ({"side": "over"}, "unknown_side"),
        ({"event_time": T + timedelta(days=1)}, "future_timestamp"),
    ],
)
def test_split_checks(over: dict[str, Any], error_class: str | None) -> None:
    r = validate_split(split(**over))
    assert (r.error_class if r else None) == error_class


def game(**over: Any) -> dict[str, Any]:
    rec = {
        "game_id": "MLB-20240524-ATL@PIT-1",
        "home_team": "PIT",
        "away_team": "ATL",
        "commence_time": datetime(2024, 5, 24, 22, 40, tzinfo=UTC),
        "game_number": 1,
        "status": "final",
        "home_score": 3,
        "away_score": 2,
        "home_pitcher": None,
        "away_pitcher": None,
        "source": "sbro",
        "event_time": T,
        "ingested_at": T,
        "source_event_id": "e1",
    }
    rec.update(over)
    return rec


@pytest.mark.parametrize(
    ("over", "error_class"),
    [
        ({}, None),
        ({"status": "done"}, "unknown_status"),
        ({"home_score": -1}, "invalid_game"),
        ({"game_number": 0}, "invalid_game"),
        ({"commence_time": "x"}, "bad_timestamp"),
    ],
)
def test_game_checks(over: dict[str, Any], error_class: str | None) -> None:
    r = validate_game(game(**over))
    assert (r.error_class if r else None) == error_class


def test_validate_parsed_moves_bad_records_to_rejects() -> None:
    p = Parsed(
        lines=[line(side="away"), line(side="home"), line(side="home", book="b", price=50)],
        splits=[split(), split(bets_pct=101)],
        games=[game(), game(status="?")],
    )
    out = validate_parsed(p)
    assert len(out.lines) == 2 and all(x["novig_prob"] == pytest.approx(0.5) for x in out.lines)
    assert len(out.splits) == 1 and len(out.games) == 1
    assert sorted(r.error_class for r in out.rejects) == [
        "invalid_split",
        "price_out_of_range",
        "unknown_status",
    ]
    assert p.rejects == []  # input untouched
