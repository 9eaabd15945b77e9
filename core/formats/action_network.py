"""Action Network public-betting scoreboard JSON: the real v1 ``odds`` entries and the v2 shape.

Both carry ``{"games": [{"id", "status", "start_time", "home_team_id", "away_team_id",
"teams": [{"id", "full_name", "abbr", ...}], "boxscore"?, ...}]}``; a game's prices are either

- **v1** (``/web/v1/scoreboard/<sport>``, real capture
  tests/fixtures/action-network/scoreboard_v1_odds_entries_2019-09-12_nfl.json): ``"odds"``, a
  flat list of entries, one per (book, period): ``book_id``, ``type`` (the period: ``game``,
  ``firsthalf``, ``secondhalf``, ``firstquarter``, ``live``, ...), ``ml_home``/``ml_away``,
  ``spread_home``/``spread_away`` with their prices ``spread_home_line``/``spread_away_line``,
  ``total`` with ``over``/``under``, splits ``*_public`` (tickets %), ``*_money`` (money %) and
  ``num_bets``, and ``inserted`` (when the entry was written: its event time). Only full-game
  entries (``type == "game"``) are staged; a period entry is refused as ``period_market``, a
  live one as ``live_market`` (in-play prices are another market than the pre-game line). Team
  totals (``home_total``...) and ``draw`` are not markets we stage and are not read. A market
  whose cells are all null is not offered (no line, no reject); one side null is refused.
- **v2** (assumed from public descriptions of the endpoint; no capture exists, pinned by the
  team's own tests/fixtures/action-network/scoreboard_v2_markets_team_fixture.json):
  ``"markets": {"<book id>": {"event": {"moneyline": [...], "spread": [...], "total": [...]}}}``,
  each outcome ``side``, ``odds``, ``value``, ``bet_info.tickets.{value,percent}``,
  ``bet_info.money.{value,percent}``, optional ``updated_at`` (event time, else fetched_at).

Book 15 is Action Network's consensus and 30 its opening line: they are aggregates, not books,
so their prices are not promoted (one ``aggregate_book`` reject per game and aggregate), but
the splits (tickets/money %) are read from the consensus book (v2: else the first book having
them; v1: the consensus full-game entry only, ``num_bets`` as the total count) and published
with book = "consensus". Unknown numeric book ids are ``unknown_book``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any, Final

from core.domain.books import CONSENSUS, BookError, action_network_book, is_aggregate
from core.domain.games import game_id, schedule_date
from core.domain.odds import PriceError, parse_american, parse_points
from core.domain.teams import TeamError, action_network_team, lookup_team, resolve_team
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import (
    AGGREGATE_BOOK,
    MISSING_FIELD,
    MONEYLINE,
    SPREAD,
    TEAM_MISMATCH,
    TOTAL,
    UNKNOWN_SIDE,
    UNKNOWN_STATUS,
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
    to_float_or_none,
    to_int_or_none,
)

MARKETS: Final = (MONEYLINE, SPREAD, TOTAL)
SIDES: Final = {MONEYLINE: ("home", "away"), SPREAD: ("home", "away"), TOTAL: ("over", "under")}
STATUS: Final = {
    "scheduled": "scheduled", "created": "scheduled", "pre": "scheduled",
    "inprogress": "in_progress", "in_progress": "in_progress", "live": "in_progress",
    "delayed": "in_progress", "halftime": "in_progress",
    "complete": "final", "completed": "final", "closed": "final", "final": "final",
    "postponed": "postponed", "cancelled": "postponed", "canceled": "postponed",
    "suspended": "postponed",
}  # fmt: skip


class _GameError(Exception):
    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def _team_code(gm: Mapping[str, Any], team_id: Any, role: str, where: str) -> str:
    if team_id is None:
        raise _GameError(MISSING_FIELD, f"{where}: missing {role}_team_id")
    teams = gm.get("teams")
    entry: Mapping[str, Any] | None = None
    if isinstance(teams, list):
        for t in teams:
            if isinstance(t, Mapping) and t.get("id") == team_id:
                entry = t
                break
    by_id = action_network_team(team_id)
    if entry is None:
        if by_id is None:
            raise _GameError(MISSING_FIELD, f"{where}: {role} team id {team_id} not in teams[]")
        return by_id
    names = [entry.get("abbr"), entry.get("full_name")]
    codes = {c for c in (lookup_team(n) for n in names if n) if c}
    if by_id is not None:
        codes.add(by_id)
    if len(codes) > 1:
        raise _GameError(TEAM_MISMATCH, f"{where}: {role} team {names} resolves to {codes}")
    if not codes:
        try:
            return resolve_team(entry.get("abbr") or entry.get("full_name"))
        except TeamError as exc:
            raise _GameError(exc.error_class, f"{where}: {role}: {exc.reason}") from None
    return codes.pop()


def _header(gm: Any, idx: int) -> tuple[str, datetime, str, str, str]:
    if not isinstance(gm, Mapping):
        raise _GameError(WRONG_SHAPE, f"game #{idx} is a {type(gm).__name__}, not an object")
    where = f"action_network game {gm.get('id', f'#{idx}')}"
    if not gm.get("start_time"):
        raise _GameError(MISSING_FIELD, f"{where}: missing start_time")
    try:
        commence = parse_utc(gm["start_time"])
    except TimeParseError as exc:
        raise _GameError(exc.error_class, f"{where}: start_time: {exc.reason}") from None
    home = _team_code(gm, gm.get("home_team_id"), "home", where)
    away = _team_code(gm, gm.get("away_team_id"), "away", where)
    if home == away:
        raise _GameError(WRONG_SHAPE, f"{where}: home and away are both {home}")
    return where, commence, home, away, str(gm.get("status") or "").casefold()


def _pct(info: Any, key: str) -> tuple[float | None, int | None]:
    part = info.get(key) if isinstance(info, Mapping) else None
    if not isinstance(part, Mapping):
        return None, None
    return to_float_or_none(part.get("percent")), to_int_or_none(part.get("value"))


def _splits(event: Mapping[str, Any], g: GameRef, where: str, ctx: Context, out: Parsed) -> None:
    for market in MARKETS:
        outcomes = event.get(market)
        if not isinstance(outcomes, list):
            continue
        found: dict[str, tuple[float, float | None, int | None, datetime]] = {}
        for oc in outcomes:
            if not isinstance(oc, Mapping) or oc.get("side") not in SIDES[market]:
                continue
            tickets, bets = _pct(oc.get("bet_info"), "tickets")
            money, _ = _pct(oc.get("bet_info"), "money")
            if tickets is None:
                continue
            et = ctx.fetched_at
            if oc.get("updated_at"):
                with suppress(TimeParseError):  # the line itself reports a bad timestamp
                    et = parse_utc(oc["updated_at"])
            found[oc["side"]] = (tickets, money, bets, et)
        if not found:
            continue
        counts = [v[2] for v in found.values()]
        total = sum(counts) if len(found) == 2 and all(c is not None for c in counts) else None  # type: ignore[misc]
        for side, (tickets, money, bets, et) in found.items():
            out.splits.append(
                make_split(g, CONSENSUS, market, side, tickets, money, bets, total, et, ctx)
            )


def _book(
    bid: str, event: Mapping[str, Any], book: str, g: GameRef, where: str, ctx: Context, out: Parsed
) -> None:
    for market in MARKETS:
        outcomes = event.get(market)
        if outcomes is None:
            continue
        w = f"{where} {g.game_id} book {book} ({bid}) {market}"
        if not isinstance(outcomes, list):
            out.rejects.append(Reject(WRONG_SHAPE, f"{w}: not a list"))
            continue
        for oc in outcomes:
            if not isinstance(oc, Mapping):
                out.rejects.append(Reject(WRONG_SHAPE, f"{w}: outcome is not an object"))
                continue
            side = oc.get("side")
            if side not in SIDES[market]:
                out.rejects.append(Reject(UNKNOWN_SIDE, f"{w}: side {side!r}"))
                continue
            quote = _quote(oc.get("odds"), oc.get("value"), market != MONEYLINE)
            if isinstance(quote, PriceError):
                out.rejects.append(Reject(quote.error_class, f"{w} {side}: {quote.reason}"))
                continue
            price, line = quote
            et = ctx.fetched_at
            if oc.get("updated_at"):
                try:
                    et = parse_utc(oc["updated_at"])
                except TimeParseError as exc:
                    out.rejects.append(Reject(exc.error_class, f"{w} {side}: {exc.reason}"))
                    continue
            out.lines.append(make_line(g, book, market, side, line, price, et, ctx))


def _quote(
    raw_price: Any, raw_points: Any, has_points: bool
) -> tuple[int, float | None] | PriceError:
    """(price, points) of one side; points only when the market has them (not a moneyline)."""
    price = parse_american(raw_price)
    if type(price) is PriceError:
        return price
    if not has_points:
        return price, None  # type: ignore[return-value]
    pts = parse_points(raw_points)
    return pts if type(pts) is PriceError else (price, pts)  # type: ignore[return-value]


def parse_action_network(doc: Any, ctx: Context) -> Parsed:
    """Parse a decoded Action Network scoreboard (object with ``games``)."""
    if not isinstance(doc, Mapping):
        raise ParseError(WRONG_SHAPE, f"Action Network payload is a {type(doc).__name__}")
    games = doc.get("games")
    if games is None:
        raise ParseError(MISSING_FIELD, "Action Network payload has no games")
    if not isinstance(games, list):
        raise ParseError(WRONG_SHAPE, "Action Network games is not a list")
    out = Parsed(empty=not games)  # "games": [] is a day without games
    heads: list[tuple[int, str, datetime, str, str, str]] = []
    for i, gm in enumerate(games):
        try:
            heads.append((i, *_header(gm, i)))
        except _GameError as exc:
            out.rejects.append(Reject(exc.error_class, exc.reason))
    numbers = number_doubleheaders(
        [(schedule_date(c).isoformat(), a, h, c) for _, _, c, h, a, _ in heads]
    )
    for (i, where, commence, home, away, raw_status), n in zip(heads, numbers, strict=True):
        gm = games[i]
        g = GameRef(game_id(commence, away, home, n), commence, home, away)
        status = STATUS.get(raw_status)
        if status is None:
            out.rejects.append(Reject(UNKNOWN_STATUS, f"{where} {g.game_id}: {raw_status!r}"))
        else:
            box = gm.get("boxscore") if isinstance(gm.get("boxscore"), Mapping) else {}
            scored = status in ("in_progress", "final")
            out.games.append(
                make_game(
                    g,
                    n,
                    status,
                    ctx.fetched_at,
                    ctx,
                    home_score=to_int_or_none(box.get("total_home_points")) if scored else None,
                    away_score=to_int_or_none(box.get("total_away_points")) if scored else None,
                )
            )
        if "odds" in gm:
            _v1(gm["odds"], g, where, ctx, out)
        else:
            _v2(gm.get("markets") or {}, g, where, ctx, out)
    return out


def _v2(markets: Any, g: GameRef, where: str, ctx: Context, out: Parsed) -> None:
    """A game's v2 ``markets``: {book id: {"event": {market: [outcome, ...]}}}."""
    if not isinstance(markets, Mapping):
        out.rejects.append(Reject(WRONG_SHAPE, f"{where}: markets is not an object"))
        return
    split_event: Mapping[str, Any] | None = None
    for bid, entry in markets.items():
        event = entry.get("event") if isinstance(entry, Mapping) else None
        if not isinstance(event, Mapping):
            out.rejects.append(Reject(WRONG_SHAPE, f"{where}: book {bid} has no event"))
            continue
        try:
            book = action_network_book(bid)
        except BookError as exc:
            out.rejects.append(Reject(exc.error_class, f"{where} {g.game_id}: {exc.reason}"))
            continue
        if book == CONSENSUS or split_event is None:
            split_event = event if book == CONSENSUS else split_event or event
        if is_aggregate(book):
            out.rejects.append(
                Reject(AGGREGATE_BOOK, f"{where} {g.game_id}: book {bid} is {book}, not a book")
            )
            continue
        _book(str(bid), event, book, g, where, ctx, out)
    if split_event is not None:
        _splits(split_event, g, where, ctx, out)


# -- v1: flat (book, period) entries ------------------------------------------------------------

FULL_GAME: Final = "game"
LIVE: Final = "live"
PERIOD_MARKET: Final = "period_market"
LIVE_MARKET: Final = "live_market"
#: Per market and side: (price key, points key or None, tickets % key, money % key).
V1_KEYS: Final[dict[str, tuple[tuple[str, str, str | None, str, str], ...]]] = {
    MONEYLINE: (
        ("home", "ml_home", None, "ml_home_public", "ml_home_money"),
        ("away", "ml_away", None, "ml_away_public", "ml_away_money"),
    ),
    SPREAD: (
        ("home", "spread_home_line", "spread_home", "spread_home_public", "spread_home_money"),
        ("away", "spread_away_line", "spread_away", "spread_away_public", "spread_away_money"),
    ),
    TOTAL: (
        ("over", "over", "total", "total_over_public", "total_over_money"),
        ("under", "under", "total", "total_under_public", "total_under_money"),
    ),
}


def _v1(odds: Any, g: GameRef, where: str, ctx: Context, out: Parsed) -> None:
    """A game's v1 ``odds`` entries: full-game prices per book, splits from the consensus."""
    if not isinstance(odds, list):
        out.rejects.append(Reject(WRONG_SHAPE, f"{where}: odds is not a list"))
        return
    for entry in odds:
        if not isinstance(entry, Mapping):
            out.rejects.append(Reject(WRONG_SHAPE, f"{where}: odds entry is not an object"))
            continue
        bid, period = entry.get("book_id"), entry.get("type")
        w = f"{where} {g.game_id} book {bid} {period}"
        if period != FULL_GAME:
            cls = LIVE_MARKET if period == LIVE else PERIOD_MARKET
            out.rejects.append(Reject(cls, f"{w}: only full-game pre-game markets are staged"))
            continue
        try:
            book = action_network_book(bid)
        except BookError as exc:
            out.rejects.append(Reject(exc.error_class, f"{w}: {exc.reason}"))
            continue
        et = ctx.fetched_at
        if entry.get("inserted"):
            try:
                et = parse_utc(entry["inserted"])
            except TimeParseError as exc:
                out.rejects.append(Reject(exc.error_class, f"{w} inserted: {exc.reason}"))
                continue
        if book == CONSENSUS:
            _v1_splits(entry, g, et, ctx, out)
        if is_aggregate(book):
            out.rejects.append(Reject(AGGREGATE_BOOK, f"{w}: book {bid} is {book}, not a book"))
            continue
        for market, sides in V1_KEYS.items():
            if all(entry.get(k) is None for side in sides for k in side[1:3] if k):
                continue  # not offered by this book
            for side, price_key, points_key, _, _ in sides:
                points = entry.get(points_key) if points_key else None
                quote = _quote(entry.get(price_key), points, points_key is not None)
                if isinstance(quote, PriceError):
                    w_side = f"{w} {market} {side}"
                    out.rejects.append(Reject(quote.error_class, f"{w_side}: {quote.reason}"))
                    continue
                price, line = quote
                out.lines.append(make_line(g, book, market, side, line, price, et, ctx))


def _v1_splits(
    entry: Mapping[str, Any], g: GameRef, et: datetime, ctx: Context, out: Parsed
) -> None:
    """Tickets and money % of the consensus full-game entry; ``num_bets`` is the game's count."""
    total = to_int_or_none(entry.get("num_bets"))
    for market, sides in V1_KEYS.items():
        for side, _, _, tickets_key, money_key in sides:
            tickets = to_float_or_none(entry.get(tickets_key))
            if tickets is None:
                continue
            money = to_float_or_none(entry.get(money_key))
            out.splits.append(
                make_split(g, CONSENSUS, market, side, tickets, money, None, total, et, ctx)
            )
