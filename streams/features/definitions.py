"""Small odds helpers and constants the engine and the benchmark share.

The reference implementation deliberately does not import this module (it re-derives
everything), so that comparing the two tests the definitions, not a shared helper.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TOPIC_VELOCITY = "curated.line_velocity"
TOPIC_STEAM = "curated.steam_moves"
TOPIC_SHARP = "curated.sharp_signals"
TOPIC_CONSENSUS = "curated.consensus"
TOPIC_VECTOR = "curated.feature_vectors"

FEATURE_SET_VERSION = "v1"

# Movement is measured on one canonical side per market (DESIGN.md, domain definitions).
CANONICAL_SIDE = {"moneyline": "home", "spread": "home", "total": "over"}
OTHER_SIDE = {"home": "away", "away": "home", "over": "under", "under": "over"}
# Unit of the market's primary (line) series: steam, RLM and vectors are measured on it.
PRIMARY_UNIT = {"moneyline": "cents", "spread": "points", "total": "points"}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MINUTE_US = 60_000_000


def cents(price_american: int | float) -> float:
    """American odds on the continuous cents scale: −105 → +105 is 10 cents, not 210."""
    return float(price_american - 100 if price_american >= 100 else price_american + 100)


_US_OF: dict[datetime, int] = {}
_US_OF_MAX = 16_384


def to_us(dt: datetime) -> int:
    """Exact integer microseconds since the epoch (floats would blur window boundaries).

    Remembered per datetime: the decoder hands out one object per distinct timestamp, and
    the aware subtraction costs ten times a lookup (several calls a staged line)."""
    us = _US_OF.get(dt)
    if us is None:
        us = (dt - EPOCH) // _US
        if len(_US_OF) >= _US_OF_MAX:
            _US_OF.clear()
        _US_OF[dt] = us
    return us


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def favoured_side(market: str, net_move: float) -> str | None:
    """The side money is on, from the sign of the canonical value's change.

    A falling home moneyline or home spread means money on home; a rising total means money
    on the over.
    """
    if net_move == 0:
        return None
    if market == "total":
        return "over" if net_move > 0 else "under"
    return "home" if net_move < 0 else "away"
