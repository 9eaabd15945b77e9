"""Pinnacle line history (R package pinnacle.data, MLB2016), one CSV row per raw record.

request["header"] carries the header line. Team 1 is the away team: SpreadTeam1/SpreadUS1 and
MoneyUS1 are the away side, SpreadUS2/MoneyUS2 the home side (home spread = -SpreadTeam1).
An empty market is a market not offered yet at that snapshot: no line and no reject. A market
with some cells filled and others empty is refused (missing_price / missing_line).

DoubleHeaderGame follows Baseball-Reference: 0 = only game of the day (game number 1), 1 and 2 =
first and second game of a doubleheader. Event time = EnteredDateTimeUTC; the Game record
(final, with scores and starting pitchers) carries the same event time.

Data caveat seen in the capture: its "UTC" times run 3 hours late against the real schedule
(STL@PIT of 2016-04-03 started 17:05 UTC, the file says 20:05). We keep the file's values
(no silent correction); the New York date, hence the game id, is unaffected for day games.
"""

from __future__ import annotations

from typing import Any, Final

from core.domain.games import game_id
from core.domain.odds import PriceError, parse_american, parse_points
from core.domain.teams import TeamError, resolve_team
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import (
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
from core.formats.csvrow import row_dict

BOOK: Final = "pinnacle"
REQUIRED: Final = (
    "BaseballRefID", "EventDateTimeUTC", "AwayTeam", "HomeTeam", "DoubleHeaderGame",
    "EnteredDateTimeUTC", "SpreadTeam1", "SpreadUS1", "SpreadUS2", "MoneyUS1", "MoneyUS2",
    "TotalPoints", "TotalUSOver", "TotalUSUnder",
)  # fmt: skip


def _game_number(raw: str, where: str) -> int:
    if raw == "":
        return 1
    n = to_int_or_none(raw)
    if n is None or n < 0 or n > 2:
        raise ParseError(WRONG_SHAPE, f"{where}: DoubleHeaderGame {raw!r} is not 0, 1 or 2")
    return 1 if n == 0 else n


def _pair(
    out: Parsed,
    where: str,
    market: str,
    cells: tuple[str, ...],
) -> tuple[Any, Any] | None:
    """Prices of a market's two sides, None when the market is not offered (all cells empty)."""
    if all(c == "" for c in cells):
        return None
    prices = []
    for side, raw in zip(("1", "2"), cells[-2:], strict=True):
        p = parse_american(raw)
        if type(p) is PriceError:
            out.rejects.append(Reject(p.error_class, f"{where} {market} side {side}: {p.reason}"))
        prices.append(p)
    return prices[0], prices[1]


def row_game(row: dict[str, str], where: str) -> tuple[GameRef, int]:
    """The game a row is about, and its game number; ParseError when it names none.

    Also what the file collector keys a row by (the game id), so a game's rows share a
    partition from the collector on.
    """
    try:
        commence = parse_utc(row["EventDateTimeUTC"], assume_utc=True)
    except TimeParseError as exc:
        raise ParseError(exc.error_class, f"{where}: {exc.reason}") from None
    try:
        away = resolve_team(row["AwayTeam"])
        home = resolve_team(row["HomeTeam"])
    except TeamError as exc:
        raise ParseError(exc.error_class, f"{where}: {exc.reason}") from None
    if home == away:
        raise ParseError(WRONG_SHAPE, f"{where}: home and away are both {home}")
    n = _game_number(row["DoubleHeaderGame"], where)
    return GameRef(game_id(commence, away, home, n), commence, home, away), n


def parse_pinnacle(envelope: dict[str, Any], ctx: Context) -> Parsed:
    """Parse one Pinnacle CSV row into up to six lines and one game state."""
    header = ctx.request.get("header")
    if not header:
        raise ParseError(MISSING_FIELD, "pinnacle record has no request header")
    row = row_dict(payload_text(envelope), header, REQUIRED)
    ref = row["BaseballRefID"] or "?"
    where = f"pinnacle {ref} {row['EnteredDateTimeUTC']}"
    try:
        et = parse_utc(row["EnteredDateTimeUTC"], assume_utc=True)
    except TimeParseError as exc:
        raise ParseError(exc.error_class, f"{where}: {exc.reason}") from None
    g, n = row_game(row, where)
    where = f"{where} {g.game_id}"
    out = Parsed()
    lines = out.lines

    ml = _pair(out, where, MONEYLINE, (row["MoneyUS1"], row["MoneyUS2"]))
    if ml is not None:
        a, h = ml
        if type(a) is int:
            lines.append(make_line(g, BOOK, MONEYLINE, "away", None, a, et, ctx))
        if type(h) is int:
            lines.append(make_line(g, BOOK, MONEYLINE, "home", None, h, et, ctx))

    sp_cells = (row["SpreadTeam1"], row["SpreadUS1"], row["SpreadUS2"])
    sp = _pair(out, where, SPREAD, sp_cells)
    if sp is not None:
        pts = parse_points(sp_cells[0])
        if type(pts) is PriceError:
            out.rejects.append(Reject(pts.error_class, f"{where} spread: {pts.reason}"))
        else:
            a, h = sp
            if type(a) is int:
                lines.append(make_line(g, BOOK, SPREAD, "away", pts, a, et, ctx))  # type: ignore[arg-type]
            if type(h) is int:
                lines.append(make_line(g, BOOK, SPREAD, "home", -pts + 0.0, h, et, ctx))  # type: ignore[operator]

    tot_cells = (row["TotalPoints"], row["TotalUSOver"], row["TotalUSUnder"])
    tot = _pair(out, where, TOTAL, tot_cells)
    if tot is not None:
        pts = parse_points(tot_cells[0])
        if type(pts) is PriceError:
            out.rejects.append(Reject(pts.error_class, f"{where} total: {pts.reason}"))
        else:
            o, u = tot
            if type(o) is int:
                lines.append(make_line(g, BOOK, TOTAL, "over", pts, o, et, ctx))  # type: ignore[arg-type]
            if type(u) is int:
                lines.append(make_line(g, BOOK, TOTAL, "under", pts, u, et, ctx))  # type: ignore[arg-type]

    hs = to_int_or_none(row.get("FinalScoreHome", ""))
    aw = to_int_or_none(row.get("FinalScoreAway", ""))
    status = "final" if hs is not None and aw is not None else "scheduled"
    out.games.append(
        make_game(
            g,
            n,
            status,
            et,
            ctx,
            home_score=hs,
            away_score=aw,
            home_pitcher=row.get("HomeStartingPitcher") or None,
            away_pitcher=row.get("AwayStartingPitcher") or None,
        )
    )
    return out
