"""Canonical game id: ``MLB-YYYYMMDD-AWAY@HOME-N``.

The date is the date of first pitch in America/New_York (the league's schedule date: a 10 pm
Pacific start is still "today" in New York, and 02:10 UTC belongs to the previous day), N is
the game number of the day for these two teams (1, or 2 for a doubleheader's second game).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from core.domain.teams import CODE_SET

NEW_YORK: Final = ZoneInfo("America/New_York")
PREFIX: Final = "MLB"


def schedule_date(commence_time: datetime) -> date:
    """Date of first pitch in America/New_York; refuses naive datetimes."""
    if commence_time.tzinfo is None:
        raise ValueError("commence_time must be timezone-aware")
    return commence_time.astimezone(NEW_YORK).date()


@lru_cache(maxsize=65_536)
def game_id(commence_time: datetime, away: str, home: str, game_number: int = 1) -> str:
    """``MLB-YYYYMMDD-AWAY@HOME-N`` from an aware first-pitch time and canonical team codes."""
    if away not in CODE_SET or home not in CODE_SET:
        raise ValueError(f"not canonical team codes: {away!r}, {home!r}")
    if away == home:
        raise ValueError(f"a team cannot play itself: {away}")
    if type(game_number) is not int or game_number < 1:
        raise ValueError(f"game number must be an int >= 1, got {game_number!r}")
    d = schedule_date(commence_time)
    return f"{PREFIX}-{d:%Y%m%d}-{away}@{home}-{game_number}"


def game_id_for_date(d: date, away: str, home: str, game_number: int = 1) -> str:
    """Game id from a schedule date already in New York time (sources that give only a date)."""
    if away not in CODE_SET or home not in CODE_SET:
        raise ValueError(f"not canonical team codes: {away!r}, {home!r}")
    return f"{PREFIX}-{d:%Y%m%d}-{away}@{home}-{game_number}"


def split_game_id(gid: str) -> tuple[date, str, str, int]:
    """Inverse of game_id: (date, away, home, game number); raises ValueError if malformed."""
    parts = gid.split("-")
    if len(parts) != 4 or parts[0] != PREFIX or "@" not in parts[2]:
        raise ValueError(f"not a canonical game id: {gid!r}")
    away, home = parts[2].split("@", 1)
    if away not in CODE_SET or home not in CODE_SET:
        raise ValueError(f"not a canonical game id: {gid!r}")
    d = datetime.strptime(parts[1], "%Y%m%d").date()
    return d, away, home, int(parts[3])
