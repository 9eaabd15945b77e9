"""Timestamps as sources write them, to aware UTC datetimes.

Sources write ISO 8601 with "Z" (Odds API, SBD: "2025-06-13T18:20:00.000Z"), with a space and
an offset and nanoseconds (Pinnacle: "2016-03-31 21:16:48.046999931+00:00"), or Avro decodes
them already. Python's fromisoformat stops at microseconds, so longer fractions are truncated
(not rounded: a timestamp never moves to the next microsecond). Naive values are refused unless
the caller knows the column is UTC (``assume_utc``). Results are memoized: feeds repeat them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

BAD_TIMESTAMP: Final = "bad_timestamp"


class TimeParseError(ValueError):
    """A timestamp that cannot be read; ``error_class`` is the dead-letter class."""

    error_class = BAD_TIMESTAMP

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _trim_fraction(s: str) -> str:
    dot = s.find(".")
    if dot < 0:
        return s
    end = dot + 1
    n = len(s)
    while end < n and s[end].isdigit():
        end += 1
    if end - dot - 1 <= 6:
        return s
    return s[: dot + 7] + s[end:]


@lru_cache(maxsize=65_536)
def _parse_str(s: str, assume_utc: bool) -> datetime:
    t = s.strip()
    if not t:
        raise TimeParseError("empty timestamp")
    if t[-1] in "zZ":
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(_trim_fraction(t))
    except ValueError:
        raise TimeParseError(f"timestamp {s!r} is not ISO 8601") from None
    if dt.tzinfo is None:
        if not assume_utc:
            raise TimeParseError(f"timestamp {s!r} has no UTC offset")
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_utc(value: object, *, assume_utc: bool = False) -> datetime:
    """An aware UTC datetime from an ISO string or a datetime; raises TimeParseError."""
    if type(value) is str:
        return _parse_str(value, assume_utc)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if not assume_utc:
                raise TimeParseError(f"datetime {value.isoformat()} has no UTC offset")
            return value.replace(tzinfo=UTC)
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    raise TimeParseError(f"timestamp {value!r} of type {type(value).__name__} is not a string")


def from_micros(us: int) -> datetime:
    """Aware UTC datetime of microseconds since the epoch (Avro timestamp-micros)."""
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def is_aware(value: object) -> bool:
    """True for a datetime with a UTC offset (what every staging record carries)."""
    return isinstance(value, datetime) and value.utcoffset() is not None
