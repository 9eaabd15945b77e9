"""Action Network scoreboard parser: the real v1 odds entries and the team's v2 fixture."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.formats import Parsed, parse
from core.formats.action_network import V1_KEYS
from streams.staging.validate import parse_and_validate
from tests.fixtures_path import AN_V1_ODDS
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


def test_v2_spread_without_points_is_refused() -> None:
    doc = json.loads(FIXTURE.read_text())
    outcomes = doc["games"][0]["markets"]["69"]["event"]["spread"]
    del outcomes[0]["value"]
    p = parse(env(doc))
    assert "missing_line" in {r.error_class for r in p.rejects}
    assert all(x["line"] is not None for x in p.lines if x["market"] != "moneyline")


# ---------------------------------------------------------------- v1: the real odds entries

V1_ENTRIES: list[dict[str, Any]] = json.loads(AN_V1_ODDS.read_text())
V1_FETCHED = datetime(2019, 9, 13, 0, 25, tzinfo=UTC)


def v1_doc(odds: list[dict[str, Any]]) -> dict[str, Any]:
    """One MLB game (Action Network's own STL and PIT team entries) carrying ``odds``: the real
    capture is of an NFL game, so its teams are swapped; the entries keep their shape and values."""
    teams = json.loads(FIXTURE.read_text())["games"][0]["teams"]  # ids 207 STL, 203 PIT
    return {
        "games": [
            {
                "id": 101,
                "status": "scheduled",
                "start_time": "2019-09-13T00:20:00.000Z",
                "away_team_id": 203,
                "home_team_id": 207,
                "teams": teams,
                "odds": copy.deepcopy(odds),
            }
        ]
    }


def v1_env(doc: Any) -> dict[str, Any]:
    return {**env(doc), "fetched_at": V1_FETCHED}


def as_book(entry: dict[str, Any], book_id: int) -> dict[str, Any]:
    """A real entry under another book id: a book's full-game entry has this very shape."""
    return {**entry, "book_id": book_id}


def test_the_real_v1_capture_has_the_fields_the_parser_reads() -> None:
    assert len(V1_ENTRIES) == 10
    assert {(e["book_id"], e["type"]) for e in V1_ENTRIES} == {
        (b, t)
        for b in (15, 30)
        for t in ("game", "firsthalf", "secondhalf", "firstquarter", "live")
    }
    keys = set(V1_ENTRIES[0])
    assert all(set(e) == keys for e in V1_ENTRIES)  # flat entries, one shape
    read = {k for sides in V1_KEYS.values() for side in sides for k in side[1:] if k}
    assert read | {"book_id", "type", "inserted", "num_bets"} <= keys
    consensus = next(e for e in V1_ENTRIES if (e["book_id"], e["type"]) == (15, "game"))
    assert (consensus["ml_home_public"], consensus["ml_home_money"]) == (70, 87)
    assert consensus["num_bets"] == 62759


def test_the_real_v1_entries_alone_are_splits_and_named_refusals() -> None:
    p = parse(v1_env(v1_doc(V1_ENTRIES)))
    assert [g["game_id"] for g in p.games] == ["MLB-20190912-PIT@STL-1"]
    assert p.lines == []  # 15 and 30 are aggregates: no book of the capture has prices to stage
    assert sorted(r.error_class for r in p.rejects) == [
        "aggregate_book", "aggregate_book",  # the full-game consensus and opening line
        "live_market", "live_market",
        *["period_market"] * 6,  # first half, second half, first quarter of both
    ]  # fmt: skip
    live = next(r for r in p.rejects if r.error_class == "live_market")
    assert "book 15 live" in live.reason and "MLB-20190912-PIT@STL-1" in live.reason
    got = {
        (s["market"], s["side"]): (s["bets_pct"], s["money_pct"], s["bets"], s["total_bets"])
        for s in p.splits
    }
    assert got == {
        ("moneyline", "home"): (70.0, 87.0, None, 62759),
        ("moneyline", "away"): (30.0, 13.0, None, 62759),
        ("spread", "home"): (71.0, 66.0, None, 62759),
        ("spread", "away"): (29.0, 34.0, None, 62759),
        ("total", "over"): (47.0, 46.0, None, 62759),
        ("total", "under"): (53.0, 54.0, None, 62759),
    }
    assert {s["book"] for s in p.splits} == {"consensus"}
    inserted = datetime(2019, 9, 13, 0, 22, 8, 710018, tzinfo=UTC)
    assert {s["event_time"] for s in p.splits} == {inserted}
    assert {s["ingested_at"] for s in p.splits} == {V1_FETCHED}


def test_a_book_entry_of_the_real_shape_is_staged_full_game_only() -> None:
    game, half = (
        next(e for e in V1_ENTRIES if (e["book_id"], e["type"]) == (15, t))
        for t in ("game", "firsthalf")
    )
    p = parse(v1_env(v1_doc([as_book(game, 68), as_book(half, 68), as_book(game, 4242)])))
    got = sorted(
        (x["book"], x["market"], x["side"], x["line"], x["price_american"]) for x in p.lines
    )
    assert got == [
        ("draftkings", "moneyline", "away", None, 240),
        ("draftkings", "moneyline", "home", None, -300),
        ("draftkings", "spread", "away", 6.5, -110),
        ("draftkings", "spread", "home", -6.5, -110),
        ("draftkings", "total", "over", 48.0, -110),
        ("draftkings", "total", "under", 48.0, -110),
    ]
    assert {x["event_time"] for x in p.lines} == {
        datetime(2019, 9, 13, 0, 22, 8, 710018, tzinfo=UTC)
    }
    assert sorted(r.error_class for r in p.rejects) == ["period_market", "unknown_book"]
    assert p.splits == []  # splits come from the consensus entry only
    # The capture is NFL: its total of 48 is no MLB total, and validation says so.
    checked = parse_and_validate(v1_env(v1_doc([as_book(game, 68)])), now=V1_FETCHED)
    assert {x["market"] for x in checked.lines} == {"moneyline", "spread"}
    assert [r.error_class for r in checked.rejects] == ["implausible_line", "implausible_line"]


@pytest.mark.parametrize(
    ("change", "error_classes", "lines"),
    [
        ({"ml_away": None}, ["missing_price"], 5),  # one side of a market missing: refused
        ({"ml_home": None, "ml_away": None}, [], 4),  # the whole market absent: not offered
        ({"spread_home": "six"}, ["invalid_line"], 5),
        ({"inserted": "yesterday"}, ["bad_timestamp"], 0),
        ({"type": "secondhalf"}, ["period_market"], 0),
    ],
)
def test_v1_entry_cells(change: dict[str, Any], error_classes: list[str], lines: int) -> None:
    game = next(e for e in V1_ENTRIES if (e["book_id"], e["type"]) == (15, "game"))
    p = parse(v1_env(v1_doc([{**as_book(game, 69), **change}])))
    assert sorted(r.error_class for r in p.rejects) == error_classes
    assert len(p.lines) == lines and {x["book"] for x in p.lines} <= {"fanduel"}


def test_v1_wrong_shapes() -> None:
    doc = v1_doc([])
    doc["games"][0]["odds"] = {"15": {}}
    assert [r.error_class for r in parse(v1_env(doc)).rejects] == ["wrong_shape"]
    doc["games"][0]["odds"] = [42]
    assert [r.error_class for r in parse(v1_env(doc)).rejects] == ["wrong_shape"]
