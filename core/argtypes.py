"""argparse types that refuse impossible numbers at the door, as usage errors (exit 2).

``type=int`` takes ``--games -2`` or ``--port 99999`` and leaves the command to fail later, with a
traceback or silently; these say what is allowed before anything runs.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _number(kind: type[int] | type[float], text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _bounded(
    kind: type[int] | type[float], low: float | None, high: float | None, what: str
) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _bounded(int, 1, None, "a positive integer")
non_negative_int = _bounded(int, 0, None, "an integer >= 0")
positive_float = _bounded(float, 1e-9, None, "a positive number")
non_negative_float = _bounded(float, 0, None, "a number >= 0")
port = _bounded(int, 1, 65535, "a port number (1-65535)")
port_or_zero = _bounded(int, 0, 65535, "a port number (1-65535, or 0 for none)")


def positive_int_at_most(high: int) -> Callable[[str], int | float]:
    return _bounded(int, 1, high, f"an integer from 1 to {high}")


def moment(text: str) -> datetime:
    """A time: ISO 8601 (naive means UTC) or relative to now, ``30m``, ``2h``, ``1d ago``."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_RELATIVE = re.compile(r"^-?(\d+(?:\.\d+)?)\s*([smhd])(?:\s*ago)?$")


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (naive means UTC) or relative to now: ``90m``, ``-2h``, ``1d ago``."""
    m = _RELATIVE.match(text.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: float(m.group(1))})
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-06-01T18:00Z) or 30m, 2h, 1d ago"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
