"""The Odds API v4 ``/sports/baseball_mlb/odds`` response (also the simulator's shape).

A JSON list of events, or one event object. Markets h2h/spreads/totals map to
moneyline/spread/total; outcome names are team names (resolved through the alias table and
matched to the event's home/away teams, never by string equality) or Over/Under. Event time is
the market's ``last_update``, else the bookmaker's. Prices are American unless the request says
``oddsFormat=decimal``, in which case they are converted.

Partial failure: in a list, an event that cannot be used (missing field, unknown team) becomes
one reject and the others are kept; a single-event payload (the simulator) that cannot be used
raises ParseError, since nothing of it survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from core.domain.books import BookError, canonical_book
from core.domain.games import game_id, schedule_date
from core.domain.odds import PriceError, decimal_to_american, parse_american, parse_points
from core.domain.teams import TeamError, lookup_team, resolve_team
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import (
    MISSING_FIELD,
    MONEYLINE,
    SPREAD,
    TOTAL,
    UNKNOWN_MARKET,
    UNKNOWN_SIDE,
    WRONG_SHAPE,
    Context,
    GameRef,
    Parsed,
    ParseError,
    Reject,
    make_game,
    make_line,
    number_doubleheaders,
    status_by_clock,
)

MARKETS: Final = {"h2h": MONEYLINE, "spreads": SPREAD, "totals": TOTAL}
OVER_UNDER: Final = {"over": "over", "under": "under"}


class _EventError(Exception):
    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def _require(ev: Mapping[str, Any], key: str, where: str) -> Any:
    v = ev.get(key)
    if v is None or v == "":
        raise _EventError(MISSING_FIELD, f"{where}: missing {key}")
    return v


def _event_header(ev: Any, idx: int) -> tuple[str, datetime, str, str]:
    if not isinstance(ev, Mapping):
        raise _EventError(WRONG_SHAPE, f"event #{idx} is a {type(ev).__name__}, not an object")
    where = f"event #{idx}"
    eid = _require(ev, "id", where)
    where = f"event {eid}"
    try:
        commence = parse_utc(_require(ev, "commence_time", where))
        home = resolve_team(_require(ev, "home_team", where))
        away = resolve_team(_require(ev, "away_team", where))
    except TimeParseError as exc:
        raise _EventError(exc.error_class, f"{where}: commence_time: {exc.reason}") from None
    except TeamError as exc:
        raise _EventError(exc.error_class, f"{where}: {exc.reason}") from None
    if home == away:
        raise _EventError(WRONG_SHAPE, f"{where}: home and away are both {home}")
    return str(eid), commence, home, away


def _event(
    ev: Mapping[str, Any],
    eid: str,
    g: GameRef,
    number: int,
    ctx: Context,
    decimal_odds: bool,
    out: Parsed,
) -> None:
    """Lines of one event; problems of one market or outcome become rejects."""
    books = ev.get("bookmakers")
    if books is None:
        books = []
    if not isinstance(books, list):
        raise _EventError(WRONG_SHAPE, f"event {eid}: bookmakers is not a list")
    out.games.append(
        make_game(g, number, status_by_clock(g.commence_time, ctx.fetched_at), ctx.fetched_at, ctx)
    )
    lines = out.lines
    rejects = out.rejects
    for bm in books:
        if not isinstance(bm, Mapping):
            rejects.append(Reject(WRONG_SHAPE, f"event {eid}: bookmaker is not an object"))
            continue
        try:
            book = canonical_book(bm.get("key"))
        except BookError as exc:
            rejects.append(Reject(exc.error_class, f"event {eid}: {exc.reason}"))
            continue
        bm_update = bm.get("last_update")
        markets = bm.get("markets")
        if not isinstance(markets, list):
            rejects.append(Reject(WRONG_SHAPE, f"event {eid} book {book}: markets not a list"))
            continue
        for mk in markets:
            if not isinstance(mk, Mapping):
                rejects.append(Reject(WRONG_SHAPE, f"event {eid} book {book}: market not object"))
                continue
            mkey = mk.get("key")
            market = MARKETS.get(mkey)  # type: ignore[arg-type]
            if market is None:
                rejects.append(Reject(UNKNOWN_MARKET, f"event {eid} book {book}: market {mkey!r}"))
                continue
            where = f"event {eid} {g.game_id} book {book} {market}"
            try:
                et = parse_utc(mk.get("last_update") or bm_update)
            except TimeParseError as exc:
                rejects.append(Reject(exc.error_class, f"{where}: last_update: {exc.reason}"))
                continue
            outcomes = mk.get("outcomes")
            if not isinstance(outcomes, list):
                rejects.append(Reject(WRONG_SHAPE, f"{where}: outcomes is not a list"))
                continue
            for oc in outcomes:
                if not isinstance(oc, Mapping):
                    rejects.append(Reject(WRONG_SHAPE, f"{where}: outcome is not an object"))
                    continue
                name = oc.get("name")
                if market == TOTAL:
                    side = OVER_UNDER.get(name.casefold()) if isinstance(name, str) else None
                else:
                    code = lookup_team(name)
                    side = "home" if code == g.home else "away" if code == g.away else None
                if side is None:
                    rejects.append(Reject(UNKNOWN_SIDE, f"{where}: outcome name {name!r}"))
                    continue
                raw = oc.get("price")
                if decimal_odds and isinstance(raw, int | float) and not isinstance(raw, bool):
                    try:
                        raw = decimal_to_american(float(raw))
                    except ValueError as exc:
                        rejects.append(Reject("invalid_price", f"{where} {side}: {exc}"))
                        continue
                price = parse_american(raw)
                if type(price) is PriceError:
                    rejects.append(Reject(price.error_class, f"{where} {side}: {price.reason}"))
                    continue
                line: float | None = None
                if market != MONEYLINE:
                    pts = parse_points(oc.get("point"))
                    if type(pts) is PriceError:
                        rejects.append(Reject(pts.error_class, f"{where} {side}: {pts.reason}"))
                        continue
                    line = pts  # type: ignore[assignment]
                lines.append(make_line(g, book, market, side, line, price, et, ctx))  # type: ignore[arg-type]


def parse_odds_api(doc: Any, ctx: Context) -> Parsed:
    """Parse a decoded Odds API response (list of events or one event)."""
    single = isinstance(doc, Mapping)
    if single:
        events: list[Any] = [doc]
    elif isinstance(doc, list):
        events = doc
    else:
        raise ParseError(WRONG_SHAPE, f"Odds API payload is a {type(doc).__name__}")
    fmt = (ctx.request.get("oddsFormat") or ctx.request.get("odds_format") or "").casefold()
    decimal_odds = fmt == "decimal"
    out = Parsed(empty=not events)  # [] is a day without games
    heads: list[tuple[int, str, datetime, str, str]] = []
    for i, ev in enumerate(events):
        try:
            eid, commence, home, away = _event_header(ev, i)
        except _EventError as exc:
            if single:
                raise ParseError(exc.error_class, exc.reason) from None
            out.rejects.append(Reject(exc.error_class, exc.reason))
            continue
        heads.append((i, eid, commence, home, away))
    forced = ctx.request.get("game_number")
    numbers = number_doubleheaders(
        [(schedule_date(c).isoformat(), a, h, c) for _, _, c, h, a in heads]
    )
    for (i, eid, commence, home, away), n in zip(heads, numbers, strict=True):
        if single and forced and str(forced).isdigit() and int(forced) >= 1:
            n = int(forced)
        g = GameRef(game_id(commence, away, home, n), commence, home, away)
        try:
            _event(events[i], eid, g, n, ctx, decimal_odds, out)
        except _EventError as exc:
            if single:
                raise ParseError(exc.error_class, exc.reason) from None
            out.rejects.append(Reject(exc.error_class, exc.reason))
    return out
