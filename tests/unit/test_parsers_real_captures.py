"""Parsers over the real captures in tests/fixtures: every record is promoted or explained."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.formats import Parsed, parse
from streams.staging.validate import parse_and_validate
from tests.fixtures_path import ODDS_API, PINNACLE, SBD, SBD_ONE, SBRO


def envelope(source: str, payload: bytes, fetched_at: datetime, **request: str) -> dict[str, Any]:
    return {
        "event_id": f"{source}-1",
        "source": source,
        "fetched_at": fetched_at,
        "content_type": "application/json",
        "payload": payload,
        "request": request,
    }


def by_class(p: Parsed) -> dict[str, int]:
    return dict(collections.Counter(r.error_class for r in p.rejects))


def find(lines: list[dict[str, Any]], **kv: Any) -> dict[str, Any]:
    hits = [ln for ln in lines if all(ln[k] == v for k, v in kv.items())]
    assert len(hits) == 1, (kv, len(hits))
    return hits[0]


# ---------------------------------------------------------------- The Odds API

ODDS_FETCHED = datetime(2024, 5, 24, 16, 32, tzinfo=UTC)


@pytest.fixture(scope="module")
def odds_api() -> Parsed:
    return parse_and_validate(envelope("odds_api", ODDS_API.read_bytes(), ODDS_FETCHED))


def test_odds_api_counts(odds_api: Parsed) -> None:
    raw = json.loads(ODDS_API.read_text())
    outcomes = sum(len(m["outcomes"]) for e in raw for b in e["bookmakers"] for m in b["markets"])
    assert outcomes == 228
    assert len(odds_api.lines) == 228  # every outcome promoted
    assert odds_api.rejects == []
    assert len(odds_api.games) == 9
    assert odds_api.splits == []
    assert all(ln["novig_prob"] is not None for ln in odds_api.lines)


def test_odds_api_values(odds_api: Parsed) -> None:
    gids = {g["game_id"] for g in odds_api.games}
    assert "MLB-20240524-ATL@PIT-1" in gids
    assert "MLB-20240524-SF@NYM-1" in gids
    assert "MLB-20240524-BAL@CWS-1" in gids
    ln = find(odds_api.lines, game_id="MLB-20240524-ATL@PIT-1", book="fanduel", side="away")
    assert ln["price_american"] == -164
    assert ln["market"] == "moneyline"
    assert ln["line"] is None
    assert ln["event_time"] == datetime(2024, 5, 24, 16, 31, 14, tzinfo=UTC)
    assert ln["commence_time"] == datetime(2024, 5, 24, 22, 40, tzinfo=UTC)
    assert ln["ingested_at"] == ODDS_FETCHED
    assert ln["source"] == "odds_api"
    assert ln["source_event_id"] == "odds_api-1"
    assert (ln["home_team"], ln["away_team"]) == ("PIT", "ATL")
    home = find(odds_api.lines, game_id="MLB-20240524-ATL@PIT-1", book="fanduel", side="home")
    assert home["price_american"] == 138
    assert ln["novig_prob"] + home["novig_prob"] == pytest.approx(1.0)
    assert ln["price_decimal"] == pytest.approx(1 + 100 / 164)
    # Caesars arrives as williamhill_us
    cz = [x for x in odds_api.lines if x["book"] == "caesars"]
    assert len(cz) == 18
    assert {x["book"] for x in odds_api.lines} >= {"draftkings", "betmgm", "unibet", "mybookie"}


def test_odds_api_game_records(odds_api: Parsed) -> None:
    g = next(g for g in odds_api.games if g["game_id"] == "MLB-20240524-ATL@PIT-1")
    assert g["status"] == "scheduled"
    assert g["game_number"] == 1
    assert g["home_score"] is None


def test_simulator_single_event_uses_same_parser() -> None:
    ev = json.loads(ODDS_API.read_text())[0]
    ev["bookmakers"] = ev["bookmakers"][:1]
    p = parse(envelope("simulator", json.dumps(ev).encode(), ODDS_FETCHED))
    assert [(x["book"], x["side"], x["price_american"]) for x in p.lines] == [
        ("fanduel", "away", -164),
        ("fanduel", "home", 138),
    ]
    assert p.lines[0]["source"] == "simulator"
    assert p.games[0]["game_id"] == "MLB-20240524-ATL@PIT-1"


# ---------------------------------------------------------------- SBD

SBD_FETCHED = datetime(2025, 6, 13, 21, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def sbd() -> Parsed:
    return parse_and_validate(envelope("sbd", SBD.read_bytes(), SBD_FETCHED))


def test_sbd_every_side_promoted_or_rejected(sbd: Parsed) -> None:
    raw = json.loads(SBD.read_text())["games"]
    sides = sum(6 for g in raw for _ in g["sportsbooks"])
    assert sides == 540
    assert len(sbd.lines) + len(sbd.rejects) == 540
    assert len(sbd.lines) == 358
    assert by_class(sbd) == {"missing_price": 182}
    assert len(sbd.splits) == 90  # 15 games x 3 markets x 2 sides
    assert len(sbd.games) == 15


def test_sbd_missing_price_rejects_name_the_place(sbd: Parsed) -> None:
    reasons = [r.reason for r in sbd.rejects]
    assert sum("book bet365" in r for r in reasons) == 90
    assert sum("book fanatics" in r for r in reasons) == 90
    assert sum("book betmgm spread" in r for r in reasons) == 2
    assert (
        "game 20250613.06-MLB-PIT@CHC MLB-20250613-PIT@CHC-1 book bet365 moneyline away:"
        " empty price" in reasons
    )


def test_sbd_values(sbd: Parsed) -> None:
    gid = "MLB-20250613-PIT@CHC-1"
    assert (
        find(sbd.lines, game_id=gid, book="betmgm", market="moneyline", side="away")[
            "price_american"
        ]
        == -102
    )
    sp = find(sbd.lines, game_id=gid, book="caesars", market="spread", side="home")
    assert (sp["line"], sp["price_american"]) == (-1.5, 192)
    tot = find(sbd.lines, game_id=gid, book="caesars", market="total", side="over")
    assert (tot["line"], tot["price_american"]) == (7.0, -105)
    assert tot["event_time"] == SBD_FETCHED
    # SBD's own id says 20250614 (UTC); first pitch 20:05 in New York is June 13
    ids = {g["game_id"] for g in sbd.games}
    assert "MLB-20250613-CWS@TEX-1" in ids
    assert "MLB-20250613-ATH@KC-1" in ids  # SBD code OAK, name "Oakland Athletics"
    assert "MLB-20250613-MIA@WSH-1" in ids  # SBD code WAS
    assert "MLB-20250613-CLE@SEA-1" in ids  # "Cleveland Indians"


def test_sbd_splits(sbd: Parsed) -> None:
    s = find(sbd.splits, game_id="MLB-20250613-PIT@CHC-1", market="moneyline", side="home")
    assert s["bets_pct"] == 66.01
    assert s["money_pct"] == 52.49
    assert s["bets"] == 13315
    assert s["total_bets"] == 20170
    assert s["book"] == "consensus"
    assert s["event_time"] == datetime(2025, 6, 13, 21, 3, 10, 590000, tzinfo=UTC)
    o = find(sbd.splits, game_id="MLB-20250613-PIT@CHC-1", market="total", side="over")
    assert (o["bets_pct"], o["money_pct"], o["bets"]) == (78.03, 45.02, 8703)


def test_sbd_one_game_file_matches_first_game() -> None:
    p = parse_and_validate(envelope("sbd", SBD_ONE.read_bytes(), SBD_FETCHED))
    assert {g["game_id"] for g in p.games} == {"MLB-20250613-PIT@CHC-1"}
    assert len(p.lines) + len(p.rejects) == 36
    assert len(p.splits) == 6


# ---------------------------------------------------------------- Pinnacle

PIN_FETCHED = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pinnacle_rows() -> tuple[str, list[str]]:
    text = PINNACLE.read_text().splitlines()
    return text[0], text[1:]


def pin(header: str, row: str) -> Parsed:
    return parse_and_validate(
        envelope("file", row.encode(), PIN_FETCHED, format="pinnacle", header=header)
    )


def test_pinnacle_first_row(pinnacle_rows: tuple[str, list[str]]) -> None:
    header, rows = pinnacle_rows
    p = pin(header, rows[0])
    assert [(x["game_id"], x["market"], x["side"], x["price_american"]) for x in p.lines] == [
        ("MLB-20160403-STL@PIT-1", "moneyline", "away", -110),
        ("MLB-20160403-STL@PIT-1", "moneyline", "home", 102),
    ]
    assert p.rejects == []  # spread and total not offered yet: no line, no reject
    ln = p.lines[0]
    assert ln["book"] == "pinnacle"
    assert ln["event_time"] == datetime(2016, 3, 31, 21, 16, 48, 46999, tzinfo=UTC)
    assert ln["commence_time"] == datetime(2016, 4, 3, 20, 5, tzinfo=UTC)
    assert ln["novig_prob"] == pytest.approx(0.51411, abs=1e-5)
    (g,) = p.games
    assert (g["status"], g["away_score"], g["home_score"]) == ("final", 1, 4)
    assert (g["away_pitcher"], g["home_pitcher"]) == ("A WAINWRIGHT", "F LIRIANO")
    assert g["game_number"] == 1


def test_pinnacle_spread_and_total(pinnacle_rows: tuple[str, list[str]]) -> None:
    header, rows = pinnacle_rows
    # row 1525 of the file: spread -1.5 166/-181, total 7.0 108/-101 (sums below 1)
    p = pin(header, rows[1523])
    sp_a = find(p.lines, market="spread", side="away")
    sp_h = find(p.lines, market="spread", side="home")
    assert (sp_a["line"], sp_a["price_american"]) == (-1.5, 166)
    assert (sp_h["line"], sp_h["price_american"]) == (1.5, -181)
    assert [x for x in p.lines if x["market"] == "total"] == []
    assert by_class(p) == {"implausible_market": 1}


def test_pinnacle_whole_file(pinnacle_rows: tuple[str, list[str]]) -> None:
    header, rows = pinnacle_rows
    counts: collections.Counter[str] = collections.Counter()
    games: set[str] = set()
    for row in rows:
        p = pin(header, row)
        counts["lines"] += len(p.lines)
        counts["games"] += len(p.games)
        counts.update(r.error_class for r in p.rejects)
        games.update(g["game_id"] for g in p.games)
        assert p.lines or p.rejects or p.games
    assert len(rows) == 1906
    assert counts == {"lines": 10958, "games": 1906, "implausible_market": 1}
    assert len(games) == 21  # the TEX201604060 id is reused by two different games
    assert "MLB-20160405-SEA@TEX-1" in games
    assert "MLB-20160406-SEA@TEX-1" in games


# ---------------------------------------------------------------- SBRO


def sbro_games() -> tuple[str, list[tuple[str, str, int]]]:
    rows = SBRO.read_text().splitlines()
    seen: collections.Counter[tuple[str, str, str]] = collections.Counter()
    out = []
    for i in range(1, len(rows), 2):
        v, h = rows[i], rows[i + 1]
        key = (v.split(",")[0], v.split(",")[3], h.split(",")[3])
        seen[key] += 1
        out.append((v, h, seen[key]))
    return rows[0], out


def sb(header: str, v: str, h: str, n: int) -> Parsed:
    return parse_and_validate(
        envelope(
            "file",
            f"{v}\n{h}".encode(),
            PIN_FETCHED,
            format="sbro",
            header=header,
            season="2018",
            game_number=str(n),
        )
    )


def test_sbro_first_game() -> None:
    header, games = sbro_games()
    p = sb(header, *games[0])
    gid = "MLB-20180329-CHC@MIA-1"
    assert {x["game_id"] for x in p.lines} == {gid}
    assert len(p.lines) == 10 and p.rejects == []
    opened = datetime(2018, 3, 29, 14, 0, tzinfo=UTC)  # 10:00 New York
    closed = datetime(2018, 3, 29, 23, 5, tzinfo=UTC)  # 19:05 New York
    assert (
        find(p.lines, market="moneyline", side="away", event_time=opened)["price_american"] == -175
    )
    assert (
        find(p.lines, market="moneyline", side="home", event_time=opened)["price_american"] == 155
    )
    assert (
        find(p.lines, market="moneyline", side="away", event_time=closed)["price_american"] == -200
    )
    assert (
        find(p.lines, market="moneyline", side="home", event_time=closed)["price_american"] == 175
    )
    rl = find(p.lines, market="spread", side="away")
    assert (rl["line"], rl["price_american"], rl["event_time"]) == (-1.5, -125, closed)
    over = find(p.lines, market="total", side="over", event_time=closed)
    under = find(p.lines, market="total", side="under", event_time=closed)
    assert (over["line"], over["price_american"], under["price_american"]) == (8.0, -120, 100)
    (g,) = p.games
    assert (g["away_score"], g["home_score"], g["status"]) == (8, 4, "final")
    assert (g["away_pitcher"], g["home_pitcher"]) == ("JLESTER-L", "JURENA-R")
    assert g["commence_time"] == closed


def test_sbro_whole_season() -> None:
    header, games = sbro_games()
    counts: collections.Counter[str] = collections.Counter()
    ids: set[str] = set()
    for v, h, n in games:
        p = sb(header, v, h, n)
        counts["lines"] += len(p.lines)
        counts["games"] += len(p.games)
        counts.update(r.error_class for r in p.rejects)
        ids.update(g["game_id"] for g in p.games)
        assert len(p.lines) == 10 or p.rejects  # all ten lines, or an explanation
    assert len(games) == 2464
    assert len(ids) == 2464  # doubleheaders numbered apart
    assert counts == {
        "lines": 24602,
        "games": 2464,
        "invalid_price": 2,
        "price_out_of_range": 4,
        "implausible_line": 8,
        "implausible_market": 12,
    }
    assert "MLB-20180401-PIT@DET-1" in ids and "MLB-20180401-PIT@DET-2" in ids


def test_sbro_corrupt_row_is_explained() -> None:
    header, games = sbro_games()
    v, h, n = next(g for g in games if g[0].startswith("507,959,"))
    p = sb(header, v, h, n)
    assert by_class(p) == {"invalid_price": 1, "price_out_of_range": 1, "implausible_line": 2}
    assert any("-219.5" in r.reason for r in p.rejects)
    assert len(p.lines) == 6
