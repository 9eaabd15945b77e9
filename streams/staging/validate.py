"""Per-record checks of the staging zone, and the no-vig probability of two-way pairs.

Pure functions: thresholds come in as arguments (the staging agent passes config values).
The clock is a parameter too: by default an event time is compared with the record's own
ingestion time (a price cannot be stamped after we fetched it, beyond clock skew), which
keeps replays deterministic; pass ``now`` to compare with a wall clock instead.

Checks on a line: American price an int with 100 <= |a| <= bound (price_out_of_range), decimal
and implied probability finite (non_finite_price), spread/total points finite and on the
half-point grid (off_grid_line) and plausible (implausible_line: total in (0, 30], |spread|
<= 10), market/side consistent (unknown_market/unknown_side), timestamps aware
(bad_timestamp) and not in the future (future_timestamp). Then, per book, game, market and
event time: when both sides are present on the same line (spread lines opposite, totals equal),
their implied probabilities must sum within [min_overround, max_overround]
(implausible_market: both sides refused), and each side gets its no-vig probability.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from core.domain.odds import (
    INVALID_PRICE,
    NON_FINITE_LINE,
    NON_FINITE_PRICE,
    PRICE_BOUND,
    PRICE_MIN,
    PRICE_OUT_OF_RANGE,
)
from core.domain.timeparse import BAD_TIMESTAMP
from core.formats import parse
from core.formats.base import (
    GAME_STATUSES,
    INVALID_SPLIT,
    MISSING_FIELD,
    UNKNOWN_MARKET,
    UNKNOWN_SIDE,
    UNKNOWN_STATUS,
    Parsed,
    Reject,
)

OFF_GRID_LINE: Final = "off_grid_line"
IMPLAUSIBLE_LINE: Final = "implausible_line"
IMPLAUSIBLE_MARKET: Final = "implausible_market"
FUTURE_TIMESTAMP: Final = "future_timestamp"
INVALID_GAME: Final = "invalid_game"

DEFAULT_FUTURE_TOLERANCE: Final = timedelta(minutes=5)
MIN_OVERROUND: Final = 1.0
MAX_OVERROUND: Final = 1.2
MAX_TOTAL: Final = 30.0
MAX_SPREAD: Final = 10.0
_EPS: Final = 1e-9

SIDES_OF: Final = {
    "moneyline": frozenset({"home", "away"}),
    "spread": frozenset({"home", "away"}),
    "total": frozenset({"over", "under"}),
}
OTHER_SIDE: Final = {"home": "away", "away": "home", "over": "under", "under": "over"}


def record_where(rec: dict[str, Any]) -> str:
    """Where a record sits, for reasons: game, book, market, side (those it has)."""
    parts = [str(rec.get("game_id"))]
    if "book" in rec:
        parts.append(f"book {rec['book']}")
    for k in ("market", "side"):
        if k in rec:
            parts.append(str(rec[k]))
    if "status" in rec:
        parts.append("game state")
    return " ".join(parts)


def _aware(v: object) -> bool:
    if type(v) is datetime:  # fast path: parsers attach tzinfo or nothing
        return v.tzinfo is not None and v.utcoffset() is not None
    return isinstance(v, datetime) and v.utcoffset() is not None


_TIME_FIELDS: Final = ("event_time", "ingested_at", "commence_time")


@lru_cache(maxsize=1024)
def _limit(ref: datetime, tolerance: timedelta) -> datetime:
    return ref + tolerance


def check_time(
    rec: dict[str, Any],
    now: datetime | None,
    tolerance: timedelta,
    fields: Iterable[str] = _TIME_FIELDS,
) -> Reject | None:
    """Timestamps aware, and event_time not beyond (now or ingested_at) + tolerance."""
    for f in fields:
        if not _aware(rec.get(f)):
            return Reject(BAD_TIMESTAMP, f"{record_where(rec)}: {f} {rec.get(f)!r} is not aware")
    ref = now if now is not None else rec["ingested_at"]
    if not _aware(ref):
        return Reject(BAD_TIMESTAMP, f"reference time {ref!r} is not an aware datetime")
    if rec["event_time"] > _limit(ref, tolerance):
        return Reject(
            FUTURE_TIMESTAMP,
            f"{record_where(rec)}: event_time {rec['event_time'].isoformat()}"
            f" is after {ref.isoformat()} + {tolerance}",
        )
    return None


def validate_line(
    line: dict[str, Any],
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    price_bound: int = PRICE_BOUND,
    max_total: float = MAX_TOTAL,
    max_spread: float = MAX_SPREAD,
) -> Reject | None:
    """The first problem of one odds line, or None when it may be promoted."""
    try:
        market = line["market"]
        side = line["side"]
        a = line["price_american"]
        dec = line["price_decimal"]
        imp = line["implied_prob"]
        pts = line["line"]
        et = line["event_time"]
        ingested = line["ingested_at"]
        commence = line["commence_time"]
    except KeyError as exc:
        return Reject(MISSING_FIELD, f"odds line without {exc.args[0]}")
    sides = SIDES_OF.get(market)
    if sides is None:
        return Reject(UNKNOWN_MARKET, f"{record_where(line)}: market {market!r}")
    if side not in sides:
        return Reject(UNKNOWN_SIDE, f"{record_where(line)}: side {side!r} for {market}")
    if type(a) is not int:
        return Reject(INVALID_PRICE, f"{record_where(line)}: price {a!r} is not an int")
    if -PRICE_MIN < a < PRICE_MIN:
        return Reject(PRICE_OUT_OF_RANGE, f"{record_where(line)}: |{a}| < 100")
    if a > price_bound or a < -price_bound:
        return Reject(PRICE_OUT_OF_RANGE, f"{record_where(line)}: |{a}| > {price_bound}")
    if not (
        type(dec) is float
        and type(imp) is float
        and 1.0 < dec < math.inf
        and 0.0 < imp < 1.0  # NaN fails every comparison
    ):
        return Reject(NON_FINITE_PRICE, f"{record_where(line)}: decimal {dec!r} implied {imp!r}")
    if market == "moneyline":
        if pts is not None:
            return Reject(IMPLAUSIBLE_LINE, f"{record_where(line)}: moneyline with points {pts!r}")
    else:
        if type(pts) is not float and type(pts) is not int:
            return Reject(NON_FINITE_LINE, f"{record_where(line)}: points {pts!r}")
        if not math.isfinite(pts):
            return Reject(NON_FINITE_LINE, f"{record_where(line)}: points {pts!r}")
        if not (pts * 2.0).is_integer():
            return Reject(
                OFF_GRID_LINE, f"{record_where(line)}: {pts} is not on the half-point grid"
            )
        if market == "total":
            if not 0.0 < pts <= max_total:
                return Reject(
                    IMPLAUSIBLE_LINE, f"{record_where(line)}: total {pts} outside (0, {max_total}]"
                )
        elif abs(pts) > max_spread:
            return Reject(
                IMPLAUSIBLE_LINE, f"{record_where(line)}: spread {pts} beyond +/-{max_spread}"
            )
    if (
        type(et) is datetime
        and type(ingested) is datetime
        and type(commence) is datetime
        and et.tzinfo is not None
        and ingested.tzinfo is not None
        and commence.tzinfo is not None
        and (now is None or (type(now) is datetime and now.tzinfo is not None))
    ):  # fast path of check_time
        if et > _limit(ingested if now is None else now, future_tolerance):
            return check_time(line, now, future_tolerance)
        return None
    return check_time(line, now, future_tolerance)


def _pair_key(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["game_id"], line["book"], line["market"], line["event_time"], line["source"])


def _same_line(market: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    if market == "moneyline":
        return True
    if market == "spread":
        return abs(a["line"] + b["line"]) < _EPS
    return abs(a["line"] - b["line"]) < _EPS


def pair_and_novig(
    lines: list[dict[str, Any]],
    *,
    min_overround: float = MIN_OVERROUND,
    max_overround: float = MAX_OVERROUND,
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Fill novig_prob of complete two-way pairs; refuse pairs with an implausible sum.

    A pair is both sides of one market at one book, game and event time, on the same line.
    Sides without a partner keep novig_prob None (the other side is not in this payload).
    """
    groups: dict[tuple[Any, ...], dict[str, list[int]]] = {}
    for i, ln in enumerate(lines):
        groups.setdefault(_pair_key(ln), {}).setdefault(ln["side"], []).append(i)
    refused: set[int] = set()
    rejects: list[Reject] = []
    for by_side in groups.values():
        if len(by_side) != 2:
            continue
        (s1, i1s), (_, i2s) = by_side.items()
        if len(i1s) != 1 or len(i2s) != 1:
            continue  # several lines per side (alternate lines): no unambiguous pair
        a, b = lines[i1s[0]], lines[i2s[0]]
        market = a["market"]
        if not _same_line(market, a, b):
            continue
        s = a["implied_prob"] + b["implied_prob"]
        if s < min_overround - _EPS or s > max_overround + _EPS:
            refused.update((i1s[0], i2s[0]))
            rejects.append(
                Reject(
                    IMPLAUSIBLE_MARKET,
                    f"{a['game_id']} book {a['book']} {market} at {a['event_time']}: "
                    f"{s1} {a['price_american']} / {OTHER_SIDE[s1]} {b['price_american']} "
                    f"imply {s:.4f}, outside [{min_overround}, {max_overround}]",
                )
            )
            continue
        a["novig_prob"] = a["implied_prob"] / s
        b["novig_prob"] = b["implied_prob"] / s
    kept = [ln for i, ln in enumerate(lines) if i not in refused] if refused else lines
    return kept, rejects


def validate_split(
    split: dict[str, Any],
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> Reject | None:
    """A split's percentages within 0..100, counts non-negative, timestamps sane."""
    where = f"{split.get('game_id')} split {split.get('market')} {split.get('side')}"
    sides = SIDES_OF.get(split.get("market"))  # type: ignore[arg-type]
    if sides is None or split.get("side") not in sides:
        return Reject(UNKNOWN_SIDE, f"{where}: market/side")
    for f in ("bets_pct", "money_pct"):
        v = split.get(f)
        if v is None and f == "money_pct":
            continue
        if not isinstance(v, int | float) or not math.isfinite(v) or not -_EPS <= v <= 100 + _EPS:
            return Reject(INVALID_SPLIT, f"{where}: {f} {v!r} outside 0..100")
    for f in ("bets", "total_bets"):
        v = split.get(f)
        if v is not None and (type(v) is not int or v < 0):
            return Reject(INVALID_SPLIT, f"{where}: {f} {v!r}")
    return check_time(split, now, future_tolerance)


def validate_game(
    game: dict[str, Any],
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> Reject | None:
    """A game's status known, scores non-negative, timestamps sane."""
    where = f"{game.get('game_id')} game state"
    if game.get("status") not in GAME_STATUSES:
        return Reject(UNKNOWN_STATUS, f"{where}: status {game.get('status')!r}")
    for f in ("home_score", "away_score"):
        v = game.get(f)
        if v is not None and (type(v) is not int or v < 0):
            return Reject(INVALID_GAME, f"{where}: {f} {v!r}")
    n = game.get("game_number")
    if type(n) is not int or n < 1:
        return Reject(INVALID_GAME, f"{where}: game_number {n!r}")
    return check_time(game, now, future_tolerance)


def validate_parsed(
    parsed: Parsed,
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    price_bound: int = PRICE_BOUND,
    min_overround: float = MIN_OVERROUND,
    max_overround: float = MAX_OVERROUND,
) -> Parsed:
    """A new Parsed with refused records moved to rejects and novig_prob filled in."""
    rejects = list(parsed.rejects)
    lines: list[dict[str, Any]] = []
    for ln in parsed.lines:
        r = validate_line(ln, now=now, future_tolerance=future_tolerance, price_bound=price_bound)
        if r is None:
            lines.append(ln)
        else:
            rejects.append(r)
    lines, pair_rejects = pair_and_novig(
        lines, min_overround=min_overround, max_overround=max_overround
    )
    rejects.extend(pair_rejects)
    splits: list[dict[str, Any]] = []
    for sp in parsed.splits:
        r = validate_split(sp, now=now, future_tolerance=future_tolerance)
        if r is None:
            splits.append(sp)
        else:
            rejects.append(r)
    games: list[dict[str, Any]] = []
    for gm in parsed.games:
        r = validate_game(gm, now=now, future_tolerance=future_tolerance)
        if r is None:
            games.append(gm)
        else:
            rejects.append(r)
    return Parsed(lines=lines, splits=splits, games=games, rejects=rejects, empty=parsed.empty)


def parse_and_validate(
    envelope: Mapping[str, Any],
    *,
    now: datetime | None = None,
    future_tolerance: timedelta = timedelta(minutes=5),
) -> Parsed:
    """parse() then validate_parsed(): what the staging agent promotes, and what it refuses."""
    return validate_parsed(parse(envelope), now=now, future_tolerance=future_tolerance)
