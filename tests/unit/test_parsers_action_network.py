"""Action Network scoreboard parser, over the hand-written fixture (no real capture exists)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.staging.parsers import Parsed, parse, parse_and_validate
from tests.fixtures_path import AN_V2_FIXTURE as FIXTURE

FETCHED = datetime(2025, 7, 1, 17, 7, 17, tzinfo=UTC)


def env(doc: Any) -> dict[str, Any]:
    return {
        "event_id": "an-1",
        "source": "action_network",
        "fetched_at": FETCHED,
        "payload": json.dumps(doc).encode(),
        "request": {},
    }


@pytest.fixture(scope="module")
def parsed() -> Parsed:
    return parse_and_validate(env(json.loads(FIXTURE.read_text())))


def test_games(parsed: Parsed) -> None:
    got = [(g["game_id"], g["status"], g["home_score"], g["away_score"]) for g in parsed.games]
    assert got == [
        ("MLB-20250701-PIT@STL-1", "scheduled", None, None),
        ("MLB-20250701-SD@PHI-1", "postponed", None, None),
        ("MLB-20250701-NYY@TOR-1", "in_progress", 3, 2),
        ("MLB-20250701-NYY@TOR-2", "scheduled", None, None),  # doubleheader, later start
    ]


def test_lines_and_rejects(parsed: Parsed) -> None:
    assert len(parsed.lines) == 15
    assert sorted(r.error_class for r in parsed.rejects) == [
        "aggregate_book",
        "aggregate_book",
        "missing_price",
        "unknown_book",
    ]
    books = {x["book"] for x in parsed.lines}
    assert books == {"draftkings", "fanduel"}
    dk = [x for x in parsed.lines if x["game_id"] == "MLB-20250701-PIT@STL-1"]
    ml_home = next(x for x in dk if x["book"] == "draftkings" and x["side"] == "home")
    assert ml_home["price_american"] == -175
    assert ml_home["novig_prob"] == pytest.approx((175 / 275) / (175 / 275 + 100 / 245), rel=1e-9)
    sp = [x for x in dk if x["book"] == "fanduel" and x["market"] == "spread"]
    assert sorted((x["side"], x["line"], x["price_american"]) for x in sp) == [
        ("away", 1.5, -146),
        ("home", -1.5, 122),
    ]
    assert sp[0]["novig_prob"] + sp[1]["novig_prob"] == pytest.approx(1.0)
    fd_ml = next(x for x in dk if x["book"] == "fanduel" and x["market"] == "moneyline")
    assert fd_ml["event_time"] == datetime(2025, 7, 1, 16, 58, 3, tzinfo=UTC)


def test_splits_from_consensus(parsed: Parsed) -> None:
    assert len(parsed.splits) == 6
    s = next(x for x in parsed.splits if x["market"] == "moneyline" and x["side"] == "home")
    assert (s["book"], s["bets_pct"], s["money_pct"], s["bets"], s["total_bets"]) == (
        "consensus",
        62.0,
        71.0,
        5058,
        8158,
    )
    assert s["source"] == "action_network"


@pytest.mark.parametrize(
    ("mutate", "error_class"),
    [
        (lambda g: g.update(status="abducted"), "unknown_status"),
        (lambda g: g.update(home_team_id=999, teams=[]), "missing_field"),
        (lambda g: g.update(start_time=None), "missing_field"),
        (lambda g: g.update(start_time="soon"), "bad_timestamp"),
        (lambda g: g["teams"][0].update(abbr="PIT"), "team_mismatch"),
    ],
)
def test_bad_games(mutate: Any, error_class: str) -> None:
    doc = json.loads(FIXTURE.read_text())
    game = doc["games"][0]
    mutate(game)
    p = parse(env(doc))
    assert error_class in {r.error_class for r in p.rejects}


def test_wrong_shapes() -> None:
    p = parse(env({"games": [42]}))
    assert [r.error_class for r in p.rejects] == ["wrong_shape"]
