"""SportsBettingDime MLB odds: ``games[]`` with home/away, per-book odds and betting splits.

Teams: the SBD ``code`` (CHC, CHW, WAS, OAK...) is resolved; when ``city team`` also resolves
it must agree (else team_mismatch). Books: ``_id`` else ``name``. Prices are strings; an empty
string is SBD's way of saying the book has no price: one ``missing_price`` reject per side
(game, book, market, side named), never a crash.

Event time: SBD has no timestamp per price, so prices carry the envelope's fetched_at (the
moment we saw them); splits carry ``bettingSplits.<market>.updated`` (their own clock), else
fetched_at. Splits are SBD's aggregate across books: book = "consensus". Games: SBD gives no
status, so it is derived from the clock (scheduled before first pitch, in_progress after);
the doubleheader number comes from the order of start times within the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from core.domain.books import CONSENSUS, BookError, canonical_book
from core.domain.games import game_id, schedule_date
from core.domain.odds import PriceError, parse_american, parse_points
from core.domain.teams import TeamError, lookup_team, resolve_team
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import (
    INVALID_SPLIT,
    MISSING_FIELD,
    MONEYLINE,
    SPREAD,
    TEAM_MISMATCH,
    TOTAL,
    WRONG_SHAPE,
    Context,
    GameRef,
    Parsed,
    ParseError,
    Reject,
    make_game,
    make_line,
    make_split,
    number_doubleheaders,
    status_by_clock,
    to_float_or_none,
    to_int_or_none,
)

SIDES: Final = {MONEYLINE: ("away", "home"), SPREAD: ("away", "home"), TOTAL: ("over", "under")}


class _GameError(Exception):
    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def _team(obj: Any, role: str, gid: str) -> str:
    if not isinstance(obj, Mapping):
        raise _GameError(MISSING_FIELD, f"game {gid}: missing {role}")
    code_raw = obj.get("code")
    full = f"{obj.get('city') or ''} {obj.get('team') or ''}".strip()
    by_code = lookup_team(code_raw)
    by_name = lookup_team(full) if full else None
    if by_code and by_name and by_code != by_name:
        raise _GameError(
            TEAM_MISMATCH, f"game {gid}: {role} code {code_raw!r} is {by_code}, {full!r} {by_name}"
        )
    code = by_code or by_name
    if code is None:
        try:
            return resolve_team(code_raw if code_raw else full)
        except TeamError as exc:
            raise _GameError(exc.error_class, f"game {gid}: {role}: {exc.reason}") from None
    return code


def _header(gm: Any, idx: int) -> tuple[str, datetime, str, str]:
    if not isinstance(gm, Mapping):
        raise _GameError(WRONG_SHAPE, f"game #{idx} is a {type(gm).__name__}, not an object")
    sid = str(gm.get("_id") or f"#{idx}")
    raw_date = gm.get("date")
    if not raw_date:
        raise _GameError(MISSING_FIELD, f"game {sid}: missing date")
    try:
        commence = parse_utc(raw_date)
    except TimeParseError as exc:
        raise _GameError(exc.error_class, f"game {sid}: date: {exc.reason}") from None
    home = _team(gm.get("home"), "home", sid)
    away = _team(gm.get("away"), "away", sid)
    if home == away:
        raise _GameError(WRONG_SHAPE, f"game {sid}: home and away are both {home}")
    return sid, commence, home, away


def _book_lines(sb: Mapping[str, Any], sid: str, g: GameRef, ctx: Context, out: Parsed) -> None:
    try:
        book = canonical_book(sb.get("_id") or sb.get("name"))
    except BookError as exc:
        out.rejects.append(Reject(exc.error_class, f"game {sid}: {exc.reason}"))
        return
    odds = sb.get("odds")
    if not isinstance(odds, Mapping):
        out.rejects.append(Reject(MISSING_FIELD, f"game {sid} {g.game_id} book {book}: no odds"))
        return
    et = ctx.fetched_at
    for market, sides in SIDES.items():
        m = odds.get(market)
        where = f"game {sid} {g.game_id} book {book} {market}"
        if not isinstance(m, Mapping):
            out.rejects.append(Reject(MISSING_FIELD, f"{where}: market missing"))
            continue
        for side in sides:
            o = m.get(side)
            if not isinstance(o, Mapping):
                out.rejects.append(Reject(MISSING_FIELD, f"{where} {side}: side missing"))
                continue
            if market == MONEYLINE:
                raw_price: Any = o.get("american")
                line: float | None = None
            else:
                po = o.get("odds")
                raw_price = po.get("american") if isinstance(po, Mapping) else None
            price = parse_american(raw_price)
            if type(price) is PriceError:
                out.rejects.append(Reject(price.error_class, f"{where} {side}: {price.reason}"))
                continue
            if market != MONEYLINE:
                pts = parse_points(o.get("points"))
                if type(pts) is PriceError:
                    out.rejects.append(Reject(pts.error_class, f"{where} {side}: {pts.reason}"))
                    continue
                line = pts  # type: ignore[assignment]
            out.lines.append(make_line(g, book, market, side, line, price, et, ctx))  # type: ignore[arg-type]


def _splits(gm: Mapping[str, Any], sid: str, g: GameRef, ctx: Context, out: Parsed) -> None:
    bs = gm.get("bettingSplits")
    if not isinstance(bs, Mapping):
        return  # no splits published for this game: nothing to refuse
    for market, sides in SIDES.items():
        m = bs.get(market)
        if not isinstance(m, Mapping):
            continue
        where = f"game {sid} {g.game_id} splits {market}"
        et = ctx.fetched_at
        if m.get("updated"):
            try:
                et = parse_utc(m["updated"])
            except TimeParseError as exc:
                out.rejects.append(Reject(exc.error_class, f"{where}: updated: {exc.reason}"))
                continue
        total = to_int_or_none(m.get("bets"))
        for side in sides:
            s = m.get(side)
            if not isinstance(s, Mapping):
                out.rejects.append(Reject(MISSING_FIELD, f"{where} {side}: side missing"))
                continue
            pct = to_float_or_none(s.get("betsPercentage"))
            money = to_float_or_none(s.get("stakePercentage"))
            if pct is None:
                out.rejects.append(Reject(INVALID_SPLIT, f"{where} {side}: no betsPercentage"))
                continue
            bets = to_int_or_none(s.get("bets"))
            out.splits.append(
                make_split(g, CONSENSUS, market, side, pct, money, bets, total, et, ctx)
            )


def parse_sbd(doc: Any, ctx: Context) -> Parsed:
    """Parse a decoded SBD response (object with ``games``)."""
    if not isinstance(doc, Mapping):
        raise ParseError(WRONG_SHAPE, f"SBD payload is a {type(doc).__name__}, not an object")
    games = doc.get("games")
    if games is None:
        raise ParseError(MISSING_FIELD, "SBD payload has no games")
    if not isinstance(games, list):
        raise ParseError(WRONG_SHAPE, "SBD games is not a list")
    out = Parsed(empty=not games)  # "games": [] is a day without games
    heads: list[tuple[int, str, datetime, str, str]] = []
    for i, gm in enumerate(games):
        try:
            heads.append((i, *_header(gm, i)))
        except _GameError as exc:
            out.rejects.append(Reject(exc.error_class, exc.reason))
    numbers = number_doubleheaders(
        [(schedule_date(c).isoformat(), a, h, c) for _, _, c, h, a in heads]
    )
    for (i, sid, commence, home, away), n in zip(heads, numbers, strict=True):
        gm = games[i]
        g = GameRef(game_id(commence, away, home, n), commence, home, away)
        status = status_by_clock(commence, ctx.fetched_at)
        out.games.append(make_game(g, n, status, ctx.fetched_at, ctx))
        books = gm.get("sportsbooks")
        if not isinstance(books, list):
            out.rejects.append(Reject(WRONG_SHAPE, f"game {sid}: sportsbooks is not a list"))
        else:
            for sb in books:
                if isinstance(sb, Mapping):
                    _book_lines(sb, sid, g, ctx, out)
                else:
                    out.rejects.append(Reject(WRONG_SHAPE, f"game {sid}: sportsbook not object"))
        _splits(gm, sid, g, ctx, out)
    return out
