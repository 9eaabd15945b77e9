"""Odds arithmetic and price parsing: the one place that knows what an American price means.

American odds a: a >= +100 pays a per 100 staked, a <= -100 needs |a| staked to win 100.
Decimal odds (stake included) d = 1 + a/100 (a >= 100) or 1 + 100/|a| (a <= -100).
Implied probability = 1/d (with the book's vig); the no-vig probability of a two-way market
divides each side's implied probability by their sum.

Moves of a moneyline are measured in "cents" on a continuous scale, c = a - 100 (a >= 100) or
a + 100 (a <= -100), so that -105 -> +105 is 10 cents (not 210) and the scale has no hole
between -100 and +100.

PRICE_BOUND: |a| <= 100000 (a 1000-to-1 shot is +100000; longer prices in an MLB two-way market
are feed errors, e.g. a decimal price mis-sent as American or a misplaced digit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

PRICE_MIN: Final = 100
PRICE_BOUND: Final = 100_000

# Error classes of a refused price (also used as dead-letter error classes).
MISSING_PRICE: Final = "missing_price"
INVALID_PRICE: Final = "invalid_price"
NON_FINITE_PRICE: Final = "non_finite_price"
PRICE_OUT_OF_RANGE: Final = "price_out_of_range"
MISSING_LINE: Final = "missing_line"
INVALID_LINE: Final = "invalid_line"
NON_FINITE_LINE: Final = "non_finite_line"


@dataclass(frozen=True, slots=True)
class PriceError:
    """Why a value is not a usable American price (or a points line)."""

    error_class: str
    reason: str


def american_to_decimal(a: int) -> float:
    """Decimal odds (stake included) of a valid American price."""
    if a >= PRICE_MIN:
        return 1.0 + a / 100.0
    if a <= -PRICE_MIN:
        return 1.0 + 100.0 / -a
    raise ValueError(f"American price {a} has |a| < 100")


def decimal_to_american(d: float) -> int:
    """Nearest American price of decimal odds d > 1 (2.0 -> +100)."""
    if not math.isfinite(d) or d <= 1.0:
        raise ValueError(f"decimal odds {d} must be finite and > 1")
    if d >= 2.0:
        return round((d - 1.0) * 100.0)
    return -round(100.0 / (d - 1.0))


def implied_prob(a: int) -> float:
    """Implied probability (with vig) of an American price: 1/decimal."""
    return 1.0 / american_to_decimal(a)


def novig_two_way(a1: int, a2: int) -> tuple[float, float]:
    """No-vig probabilities of the two sides of a two-way market (they sum to 1)."""
    p1 = implied_prob(a1)
    p2 = implied_prob(a2)
    s = p1 + p2
    return p1 / s, p2 / s


def overround(a1: int, a2: int) -> float:
    """Sum of the implied probabilities of both sides (1.0 = no vig, ~1.04 typical)."""
    return implied_prob(a1) + implied_prob(a2)


def to_cents(a: int) -> int:
    """Position of a price on the continuous cents scale (-105 -> -5, +105 -> +5)."""
    if a >= PRICE_MIN:
        return a - 100
    if a <= -PRICE_MIN:
        return a + 100
    raise ValueError(f"American price {a} has |a| < 100")


def from_cents(c: int) -> int:
    """Inverse of to_cents: 0 maps to +100 (even money)."""
    return c + 100 if c >= 0 else c - 100


def cents_move(a_from: int, a_to: int) -> int:
    """Signed size of a price move in cents (-105 -> +105 is +10)."""
    return to_cents(a_to) - to_cents(a_from)


_EVEN_WORDS: Final = frozenset({"even", "ev", "evs", "evens"})
_STR_CACHE: dict[str, int | PriceError] = {}
_STR_CACHE_MAX: Final = 20_000


def _check_int(a: int, raw: object, bound: int) -> int | PriceError:
    if -PRICE_MIN < a < PRICE_MIN:
        return PriceError(PRICE_OUT_OF_RANGE, f"American price {raw!r} has |a| < 100")
    if a > bound or a < -bound:
        return PriceError(PRICE_OUT_OF_RANGE, f"American price {raw!r} beyond +/-{bound}")
    return a


def _parse_float(f: float, raw: object, bound: int) -> int | PriceError:
    if not math.isfinite(f):
        return PriceError(NON_FINITE_PRICE, f"American price {raw!r} is not finite")
    if -PRICE_MIN < f < PRICE_MIN:
        return PriceError(PRICE_OUT_OF_RANGE, f"American price {raw!r} has |a| < 100")
    if not f.is_integer():
        return PriceError(INVALID_PRICE, f"American price {raw!r} is not a whole number")
    return _check_int(int(f), raw, bound)


def _parse_str(s: str, bound: int) -> int | PriceError:
    t = s.strip()
    if not t:
        return PriceError(MISSING_PRICE, "empty price")
    if t.casefold() in _EVEN_WORDS:
        return 100
    try:
        return _check_int(int(t), s, bound)  # int() accepts "+120", "-110", " 150 "
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return PriceError(INVALID_PRICE, f"price {s!r} is not a number")
    return _parse_float(f, s, bound)


def parse_american(value: object, bound: int = PRICE_BOUND) -> int | PriceError:
    """Parse a price as sources send it into an int, or say why not.

    Accepts int, integral float (``-110.0``), strings ``"+120"``, ``"-110"``, ``"-110.0"`` and
    ``"EVEN"`` (= +100). Refuses None/"" (missing_price), bool and junk (invalid_price),
    NaN/inf (non_finite_price), fractional prices like -219.5 (invalid_price) and
    |a| < 100 or |a| > bound (price_out_of_range). Strings are cached: feeds repeat them.
    """
    if value is None:
        return PriceError(MISSING_PRICE, "price is null")
    tp = type(value)
    if tp is int:
        return _check_int(value, value, bound)  # type: ignore[arg-type]
    if tp is str:
        if bound == PRICE_BOUND:
            hit = _STR_CACHE.get(value)  # type: ignore[arg-type]
            if hit is not None:
                return hit
            res = _parse_str(value, bound)  # type: ignore[arg-type]
            if len(_STR_CACHE) < _STR_CACHE_MAX:
                _STR_CACHE[value] = res  # type: ignore[index]
            return res
        return _parse_str(value, bound)  # type: ignore[arg-type]
    if tp is float:
        return _parse_float(value, value, bound)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return PriceError(INVALID_PRICE, f"price {value!r} is a boolean")
    if isinstance(value, int):
        return _check_int(int(value), value, bound)
    if isinstance(value, float):
        return _parse_float(float(value), value, bound)
    return PriceError(INVALID_PRICE, f"price {value!r} of type {tp.__name__} is not a number")


_POINTS_CACHE: dict[str, float | PriceError] = {}
_PICK_WORDS: Final = frozenset({"pk", "pick", "pick'em", "pickem"})


def _parse_points_str(s: str) -> float | PriceError:
    t = s.strip()
    if not t:
        return PriceError(MISSING_LINE, "empty line")
    if t.casefold() in _PICK_WORDS:
        return 0.0
    try:
        f = float(t)
    except ValueError:
        return PriceError(INVALID_LINE, f"line {s!r} is not a number")
    if not math.isfinite(f):
        return PriceError(NON_FINITE_LINE, f"line {s!r} is not finite")
    return f


def parse_points(value: object) -> float | PriceError:
    """Parse a spread or total line (``"+1.5"``, ``-1.5``, ``"8"``, ``"PK"``) into a float.

    Grid and range checks are the validator's job; this only says whether it is a number.
    """
    if value is None:
        return PriceError(MISSING_LINE, "line is null")
    tp = type(value)
    if tp is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            return PriceError(NON_FINITE_LINE, f"line {value!r} is not finite")
        return value  # type: ignore[return-value]
    if tp is int:
        return float(value)  # type: ignore[arg-type]
    if tp is str:
        hit = _POINTS_CACHE.get(value)  # type: ignore[arg-type]
        if hit is None:
            hit = _parse_points_str(value)  # type: ignore[arg-type]
            if len(_POINTS_CACHE) < _STR_CACHE_MAX:
                _POINTS_CACHE[value] = hit  # type: ignore[index]
        return hit
    return PriceError(INVALID_LINE, f"line {value!r} of type {tp.__name__} is not a number")


def on_half_point_grid(x: float) -> bool:
    """True for x.0 and x.5 lines (spreads and totals are quoted in half points)."""
    return math.isfinite(x) and (x * 2.0).is_integer()
