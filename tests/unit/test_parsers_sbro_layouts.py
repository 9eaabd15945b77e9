"""The SportsbookReview archive's season layouts, read by header: one game, four layouts, the
same lines; neutral-site (``N``, ``N``) pairs; a header without a market says which.

The fixtures are built here from the real 2018 file's first games (tests/fixtures/sbro): the
2018 layout itself (run line and totals each followed by an ``Unnamed: N`` price column), 2019's
(``RL`` holding ``+1.5(-160)``, ``OpenOU``/``CloseOU`` with unnamed price columns, as in the
archive's 2019 file), named price columns, and blank-named ones (a CSV saved without pandas).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.formats import Parsed, ParseError, parse
from core.formats.sbro import layout_of
from producers.history import sbro_records
from tests.fixtures_path import SBRO

FETCHED = datetime(2026, 1, 1, tzinfo=UTC)
REAL = SBRO.read_text().splitlines()
HEAD = REAL[0].split(",")[:17]  # Date ... Close: the same in every season
UP_TO_CLOSE = slice(0, 17)


def _2018(cells: list[str]) -> list[str]:
    return cells


def _2019(cells: list[str]) -> list[str]:
    rl, rl_price, *ou = cells[17:]
    return [*cells[UP_TO_CLOSE], f"{float(rl):+g}({rl_price})", *ou]


LAYOUTS: dict[str, tuple[list[str], Callable[[list[str]], list[str]]]] = {
    "2018 unnamed": (REAL[0].split(","), _2018),
    "2019 combined": (
        [*HEAD, "RL", "OpenOU", "Unnamed: 19", "CloseOU", "Unnamed: 21"],
        _2019,
    ),
    "named prices": (
        [*HEAD, "Run Line", "RL Price", "Open OU", "Open OU Price", "Close OU", "Close OU Odds"],
        _2018,
    ),
    "blank names": ([*HEAD, "Run Line", "", "Open OU", "", "Close OU", ""], _2018),
}


def rows(layout: str, lines: list[str]) -> tuple[str, list[str]]:
    header, convert = LAYOUTS[layout]
    return ",".join(header), [",".join(convert(ln.split(","))) for ln in lines]


def parse_game(header: str, v: str, h: str, season: str = "2018") -> Parsed:
    env = {
        "event_id": "x.csv:2-3",
        "source": "file",
        "fetched_at": FETCHED,
        "payload": f"{v}\n{h}".encode(),
        "request": {"format": "sbro", "header": header, "season": season, "game_number": "1"},
    }
    return parse(env)


def staged(p: Parsed) -> set[tuple[object, ...]]:
    return {
        (x["game_id"], x["market"], x["side"], x["line"], x["price_american"], x["event_time"])
        for x in p.lines
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_stages_the_same_game(layout: str) -> None:
    reference = parse_game(REAL[0], REAL[1], REAL[2])
    assert len(reference.lines) == 10 and reference.rejects == []
    header, (v, h) = rows(layout, REAL[1:3])
    p = parse_game(header, v, h)
    assert p.rejects == []
    assert staged(p) == staged(reference)
    rl = {x["side"]: (x["line"], x["price_american"]) for x in p.lines if x["market"] == "spread"}
    assert rl == {"away": (-1.5, -125), "home": (1.5, 105)}
    (g,) = p.games
    assert (g["away_score"], g["home_score"], g["away_pitcher"]) == (8, 4, "JLESTER-L")


def test_the_2019_header_resolves_to_combined_run_line_and_unnamed_ou_prices() -> None:
    header = ",".join(LAYOUTS["2019 combined"][0])
    layout = dict(layout_of(header).fields)
    assert layout["Run Line"] == 17 and "Run Line price" not in layout  # in the cell
    assert (layout["Open OU"], layout["Open OU price"]) == (18, 19)
    assert (layout["Close OU"], layout["Close OU price"]) == (20, 21)
    _, (v, h) = rows("2019 combined", REAL[1:3])
    assert v.split(",")[17] == "-1.5(-125)" and h.split(",")[17] == "+1.5(105)"


def test_a_combined_cell_without_its_price_is_refused_not_guessed() -> None:
    header, (v, h) = rows("2019 combined", REAL[1:3])
    v = v.replace("-1.5(-125)", "-1.5")
    p = parse_game(header, v, h)
    assert [r.error_class for r in p.rejects] == ["missing_price"]
    assert "run line away" in p.rejects[0].reason and len(p.lines) == 9


def test_a_header_without_a_market_names_it() -> None:
    header = ",".join([*HEAD, "OpenOU", "Unnamed: 19", "CloseOU", "Unnamed: 21"])
    with pytest.raises(ParseError, match=r"missing_field: .*Run Line \(or runline/rl\)"):
        parse_game(header, *REAL[1:3])


def test_neutral_site_pairs_are_games_with_the_second_row_at_home(tmp_path: Path) -> None:
    header, lines = rows("2019 combined", REAL[1:5])
    # Tokyo, March 20 2019: the archive lists both rows with VH = N, Seattle (home) second
    neutral = [
        ln.replace(",V,CUB,", ",N,ATH,").replace(",H,MIA,", ",N,SEA,").replace("329,", "320,", 1)
        for ln in lines[:2]
    ]
    f = tmp_path / "mlb_odds_2019.csv"
    f.write_text("\n".join([header, *neutral, *lines[2:]]) + "\n")
    recs = sbro_records(f)
    assert [r.event_id for r in recs] == ["mlb_odds_2019.csv:2-3", "mlb_odds_2019.csv:4-5"]
    tokyo = recs[0]
    assert tokyo.request["season"] == "2019" and tokyo.payload.count(b"\n") == 1
    p = parse_game(header, *tokyo.payload.decode().split("\n"), season="2019")
    assert p.rejects == [] and len(p.lines) == 10
    (g,) = p.games
    assert (g["game_id"], g["away_team"], g["home_team"]) == (
        "MLB-20190320-ATH@SEA-1",
        "ATH",
        "SEA",
    )
    with pytest.raises(ParseError, match="rows are 'N','H', expected V,H or N,N"):
        parse_game(header, neutral[0], lines[1].replace("329,", "320,", 1), season="2019")


def test_rows_of_another_width_are_bad_csv() -> None:
    header, (v, h) = rows("2019 combined", REAL[1:3])
    with pytest.raises(ParseError, match="bad_csv: row has 23 cells, header has 22"):
        parse_game(header, v + ",x", h)
