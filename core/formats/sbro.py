"""SportsbookReview archive (SBRO) season files: two CSV rows per game, visitor then home.

request: ``header`` (the header line), ``season`` ("2018"), optional ``game_number`` (the
collector numbers doubleheaders: the same two teams twice on one date). ``Date`` is MDD or MMDD
(329 = March 29) of the season year.

The archive's seasons differ in layout, so columns are found by the header (:func:`layout_of`):
- the run line column is ``Run Line`` or ``RL``, the totals ``Open OU``/``OpenOU`` and
  ``Close OU``/``CloseOU`` (case, spaces and underscores ignored);
- a market's price is in the column right after it when that column is unnamed (empty or
  pandas' ``Unnamed: 18``) or named as a price of it (``RL Price``, ``Open OU Odds``, ``Price``,
  ``Juice``); otherwise the price is in the cell itself, ``+1.5(-160)`` (2019's run line). A
  combined cell is read in any layout;
- ``VH`` is ``V`` then ``H``, or ``N`` and ``N`` for a neutral-site game (2019 opened in Tokyo),
  where the second row of the pair is the home team (the archive lists it second, as it lists
  home teams).

SBRO has no start times and no timestamps. Choices (nominal, documented, deterministic):
- commence_time = 19:05 America/New_York on the game date (the schedule date is exact, the
  hour is not; the game id depends only on the date);
- opening prices (``Open``, ``Open OU``) get event time 10:00 New York on the game date;
- closing prices (``Close``, ``Close OU``, ``Run Line``: SBRO's run line is a closing line) get
  event time = commence_time (close = first pitch);
- the Game record (final score, listed pitchers) gets event time = commence_time.
Totals: the visitor row's OU price is the over, the home row's the under (SBRO convention);
the two rows must quote the same total, else inconsistent_market. The book is "sbro".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, Final

from core.domain.games import NEW_YORK, game_id_for_date, schedule_date
from core.domain.odds import PriceError, parse_american, parse_points
from core.domain.teams import TeamError, resolve_team
from core.formats.base import (
    BAD_CSV,
    INCONSISTENT_MARKET,
    MISSING_FIELD,
    MONEYLINE,
    SPREAD,
    TOTAL,
    WRONG_SHAPE,
    Context,
    GameRef,
    Parsed,
    ParseError,
    Reject,
    make_game,
    make_line,
    payload_text,
    to_int_or_none,
)
from core.formats.csvrow import split_row

BOOK: Final = "sbro"
FIRST_PITCH: Final = time(19, 5)
OPEN_AT: Final = time(10, 0)
BASE_COLUMNS: Final = ("Date", "VH", "Team", "Final", "Open", "Close")
OPTIONAL_COLUMNS: Final = ("Rot", "Pitcher")
#: The markets whose price may have a column of its own: canonical name -> header spellings.
MARKET_COLUMNS: Final = {
    "Run Line": ("runline", "rl"),
    "Open OU": ("openou",),
    "Close OU": ("closeou",),
}
_PRICE_WORDS: Final = ("price", "odds", "juice", "vig")
_COMBINED: Final = re.compile(r"^\s*([^()\s]+)\s*\(\s*([^()\s]+)\s*\)\s*$")
#: The VH values of one game's two rows: visitor then home, or a neutral site's two (home second).
PAIRS: Final = (("V", "H"), ("N", "N"))


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one season file keeps what the parser reads, by column position (a header may
    repeat a name: blank price columns are all ``""``)."""

    width: int
    fields: tuple[tuple[str, int], ...]  # (what: "Team", "Run Line", "Run Line price"..., index)

    def row(self, text: str) -> dict[str, str]:
        """One CSV row as {what: cell}; ParseError(bad_csv) when its cell count differs."""
        cells = split_row(text)
        if len(cells) != self.width:
            raise ParseError(BAD_CSV, f"row has {len(cells)} cells, header has {self.width}")
        return {name: cells[i].strip() for name, i in self.fields}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _is_price_column(name: str, market_spellings: tuple[str, ...]) -> bool:
    """Unnamed (``""``, ``Unnamed: 18``) or named as a price (``RL Price``, ``Open OU Odds``)."""
    n = _norm(name)
    if n == "" or re.fullmatch(r"unnamed\d*", n):
        return True
    rest = next((n[len(m) :] for m in market_spellings if n.startswith(m)), n)
    return rest in _PRICE_WORDS


@lru_cache(maxsize=64)
def layout_of(header: str) -> Layout:
    """The header's layout; ParseError(missing_field) naming what the header lacks."""
    cols = [c.strip().lstrip("\ufeff") for c in split_row(header)]
    normed = [_norm(c) for c in cols]
    fields = {c: cols.index(c) for c in (*BASE_COLUMNS, *OPTIONAL_COLUMNS) if c in cols}
    missing = [c for c in BASE_COLUMNS if c not in fields]
    market_names = {n for spellings in MARKET_COLUMNS.values() for n in spellings}
    for market, spellings in MARKET_COLUMNS.items():
        i = next((k for k, n in enumerate(normed) if n in spellings), None)
        if i is None:
            missing.append(f"{market} (or {'/'.join(spellings)})")
            continue
        fields[market] = i
        after = i + 1
        if (
            after < len(cols)
            and normed[after] not in market_names
            and _is_price_column(cols[after], spellings)
        ):
            fields[f"{market} price"] = after
    if missing:
        raise ParseError(MISSING_FIELD, f"sbro header lacks columns {missing}")
    return Layout(len(cols), tuple(fields.items()))


def _cell(row: dict[str, str], market: str) -> tuple[str, str]:
    """(points, price) of a market in one row: a combined ``+1.5(-160)`` cell or two columns."""
    raw = row[market]
    m = _COMBINED.match(raw)
    if m:
        return m.group(1), m.group(2)
    return raw, row.get(f"{market} price", "")


@lru_cache(maxsize=4096)
def nominal_times(d: date) -> tuple[datetime, datetime]:
    """(commence = close, open) of a game date: 19:05 and 10:00 New York, in UTC."""
    commence = datetime.combine(d, FIRST_PITCH, NEW_YORK).astimezone(UTC)
    opened = datetime.combine(d, OPEN_AT, NEW_YORK).astimezone(UTC)
    return commence, opened


def _date(raw: str, season: str, where: str) -> date:
    if not raw.isdigit() or len(raw) not in (3, 4) or not season.isdigit():
        raise ParseError(WRONG_SHAPE, f"{where}: Date {raw!r} / season {season!r} not MDD/YYYY")
    try:
        return date(int(season), int(raw[:-2]), int(raw[-2:]))
    except ValueError:
        raise ParseError(WRONG_SHAPE, f"{where}: Date {raw!r} is not a day of {season}") from None


def read_game(
    text: str, header: str, season: str, game_number: str | None
) -> tuple[dict[str, str], dict[str, str], GameRef, int, str]:
    """A record's visitor and home rows, its game, game number and ``where`` for reasons.

    Also what the file collector keys a game by (the game id), so each game is on one
    partition from the collector on; raises ParseError when the record names no game.
    """
    rows_txt = [r for r in text.strip("\r\n").split("\n") if r.strip()]
    if len(rows_txt) != 2:
        raise ParseError(WRONG_SHAPE, f"sbro record has {len(rows_txt)} rows, expected 2 (V, H)")
    layout = layout_of(header)
    v, h = layout.row(rows_txt[0]), layout.row(rows_txt[1])
    where = f"sbro {season} {v['Date']} rot {v.get('Rot', '?')}"
    if (v["VH"], h["VH"]) not in PAIRS:
        raise ParseError(
            WRONG_SHAPE, f"{where}: rows are {v['VH']!r},{h['VH']!r}, expected V,H or N,N"
        )
    if v["Date"] != h["Date"]:
        raise ParseError(WRONG_SHAPE, f"{where}: rows have dates {v['Date']} and {h['Date']}")
    d = _date(v["Date"], season, where)
    try:
        away = resolve_team(v["Team"])
        home = resolve_team(h["Team"])
    except TeamError as exc:
        raise ParseError(exc.error_class, f"{where}: {exc.reason}") from None
    if home == away:
        raise ParseError(WRONG_SHAPE, f"{where}: home and away are both {home}")
    n_raw = game_number or "1"
    n = to_int_or_none(n_raw)
    if n is None or n < 1:
        raise ParseError(WRONG_SHAPE, f"{where}: game_number {n_raw!r}")
    commence, _ = nominal_times(d)
    g = GameRef(game_id_for_date(d, away, home, n), commence, home, away)
    return v, h, g, n, f"{where} {g.game_id}"


def parse_sbro(envelope: dict[str, Any], ctx: Context) -> Parsed:
    """Parse one SBRO game (visitor row, home row) into lines and a final Game record."""
    header = ctx.request.get("header")
    season = ctx.request.get("season") or ""
    if not header:
        raise ParseError(MISSING_FIELD, "sbro record has no request header")
    if not season:
        raise ParseError(MISSING_FIELD, "sbro record has no request season")
    v, h, g, n, where = read_game(
        payload_text(envelope), header, season, ctx.request.get("game_number")
    )
    commence, opened = nominal_times(schedule_date(g.commence_time))
    out = Parsed()

    def add(market: str, side: str, line: float | None, raw: str, et: datetime, what: str) -> None:
        p = parse_american(raw)
        if type(p) is PriceError:
            out.rejects.append(Reject(p.error_class, f"{where} {what} {side}: {p.reason}"))
            return
        out.lines.append(make_line(g, BOOK, market, side, line, p, et, ctx))  # type: ignore[arg-type]

    for col, et in (("Open", opened), ("Close", commence)):
        add(MONEYLINE, "away", None, v[col], et, f"{col.lower()} moneyline")
        add(MONEYLINE, "home", None, h[col], et, f"{col.lower()} moneyline")

    for row, side in ((v, "away"), (h, "home")):
        points, price = _cell(row, "Run Line")
        pts = parse_points(points)
        if type(pts) is PriceError:
            out.rejects.append(Reject(pts.error_class, f"{where} run line {side}: {pts.reason}"))
            continue
        add(SPREAD, side, pts, price, commence, "run line")  # type: ignore[arg-type]

    for col, et in (("Open OU", opened), ("Close OU", commence)):
        what = col.lower()
        (raw_v, price_v), (raw_h, price_h) = _cell(v, col), _cell(h, col)
        pv, ph = parse_points(raw_v), parse_points(raw_h)
        if type(pv) is PriceError or type(ph) is PriceError:
            bad = pv if type(pv) is PriceError else ph
            out.rejects.append(Reject(bad.error_class, f"{where} {what}: {bad.reason}"))  # type: ignore[union-attr]
            continue
        if pv != ph:
            out.rejects.append(Reject(INCONSISTENT_MARKET, f"{where} {what}: {pv} vs {ph}"))
            continue
        add(TOTAL, "over", pv, price_v, et, what)  # type: ignore[arg-type]
        add(TOTAL, "under", ph, price_h, et, what)  # type: ignore[arg-type]

    hs, aw = to_int_or_none(h["Final"]), to_int_or_none(v["Final"])
    out.games.append(
        make_game(
            g,
            n,
            "final" if hs is not None and aw is not None else "scheduled",
            commence,
            ctx,
            home_score=hs,
            away_score=aw,
            home_pitcher=h.get("Pitcher") or None,
            away_pitcher=v.get("Pitcher") or None,
        )
    )
    return out
