"""SportsbookReview archive (SBRO) season files: two CSV rows per game, visitor then home.

request: ``header`` (the header line), ``season`` ("2018"), optional ``game_number`` (the
collector numbers doubleheaders: the same two teams twice on one date). ``Date`` is MDD or MMDD
(329 = March 29) of the season year.

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

from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, Final

from streams.domain.games import NEW_YORK, game_id_for_date
from streams.domain.odds import PriceError, parse_american, parse_points
from streams.domain.teams import TeamError, resolve_team
from streams.staging.parsers.base import (
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
from streams.staging.parsers.csvrow import row_dict

BOOK: Final = "sbro"
FIRST_PITCH: Final = time(19, 5)
OPEN_AT: Final = time(10, 0)
REQUIRED: Final = (
    "Date", "VH", "Team", "Final", "Open", "Close", "Run Line", "Open OU", "Close OU",
)  # fmt: skip
# The price of each of these columns is in the (unnamed) column right after it.
PRICE_AFTER: Final = ("Run Line", "Open OU", "Close OU")


@lru_cache(maxsize=4096)
def _times(d: date) -> tuple[datetime, datetime]:
    commence = datetime.combine(d, FIRST_PITCH, NEW_YORK).astimezone(UTC)
    opened = datetime.combine(d, OPEN_AT, NEW_YORK).astimezone(UTC)
    return commence, opened


@lru_cache(maxsize=64)
def _price_columns(header: str) -> dict[str, str]:
    cols = [c.strip() for c in header.rstrip("\r\n").split(",")]
    out: dict[str, str] = {}
    for name in PRICE_AFTER:
        if name in cols:
            i = cols.index(name) + 1
            if i < len(cols):
                out[name] = cols[i]
    return out


def _date(raw: str, season: str, where: str) -> date:
    if not raw.isdigit() or len(raw) not in (3, 4) or not season.isdigit():
        raise ParseError(WRONG_SHAPE, f"{where}: Date {raw!r} / season {season!r} not MDD/YYYY")
    try:
        return date(int(season), int(raw[:-2]), int(raw[-2:]))
    except ValueError:
        raise ParseError(WRONG_SHAPE, f"{where}: Date {raw!r} is not a day of {season}") from None


def parse_sbro(envelope: dict[str, Any], ctx: Context) -> Parsed:
    """Parse one SBRO game (visitor row, home row) into lines and a final Game record."""
    header = ctx.request.get("header")
    season = ctx.request.get("season") or ""
    if not header:
        raise ParseError(MISSING_FIELD, "sbro record has no request header")
    if not season:
        raise ParseError(MISSING_FIELD, "sbro record has no request season")
    text = payload_text(envelope).strip("\r\n")
    rows_txt = [r for r in text.split("\n") if r.strip()]
    if len(rows_txt) != 2:
        raise ParseError(WRONG_SHAPE, f"sbro record has {len(rows_txt)} rows, expected 2 (V, H)")
    v = row_dict(rows_txt[0], header, REQUIRED)
    h = row_dict(rows_txt[1], header, REQUIRED)
    where = f"sbro {season} {v['Date']} rot {v.get('Rot', '?')}"
    if v["VH"] != "V" or h["VH"] != "H":
        raise ParseError(WRONG_SHAPE, f"{where}: rows are {v['VH']!r},{h['VH']!r}, expected V,H")
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
    n_raw = ctx.request.get("game_number") or "1"
    n = to_int_or_none(n_raw)
    if n is None or n < 1:
        raise ParseError(WRONG_SHAPE, f"{where}: game_number {n_raw!r}")
    commence, opened = _times(d)
    g = GameRef(game_id_for_date(d, away, home, n), commence, home, away)
    where = f"{where} {g.game_id}"
    pcols = _price_columns(header)
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

    rl_price = pcols.get("Run Line")
    for row, side in ((v, "away"), (h, "home")):
        pts = parse_points(row["Run Line"])
        if type(pts) is PriceError:
            out.rejects.append(Reject(pts.error_class, f"{where} run line {side}: {pts.reason}"))
            continue
        add(SPREAD, side, pts, row.get(rl_price, "") if rl_price else "", commence, "run line")  # type: ignore[arg-type]

    for col, et in (("Open OU", opened), ("Close OU", commence)):
        what = col.lower()
        pv, ph = parse_points(v[col]), parse_points(h[col])
        if type(pv) is PriceError or type(ph) is PriceError:
            bad = pv if type(pv) is PriceError else ph
            out.rejects.append(Reject(bad.error_class, f"{where} {what}: {bad.reason}"))  # type: ignore[union-attr]
            continue
        if pv != ph:
            out.rejects.append(Reject(INCONSISTENT_MARKET, f"{where} {what}: {pv} vs {ph}"))
            continue
        pc = pcols.get(col)
        add(TOTAL, "over", pv, v.get(pc, "") if pc else "", et, what)  # type: ignore[arg-type]
        add(TOTAL, "under", ph, h.get(pc, "") if pc else "", et, what)  # type: ignore[arg-type]

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
