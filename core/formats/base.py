"""Shared vocabulary of the source parsers: results, rejects, errors and record builders.

A parser turns one raw envelope into staging records (odds lines, betting splits, games) plus
rejects: the parts of the payload it refused, each with an error class and a reason, so that
raw in = promoted + rejected holds per source. A payload that cannot be read at all raises
ParseError instead. Records are plain dicts with the exact field names of the staging Avro
schemas (datetimes aware UTC, market/side plain strings) so the codec encodes them unchanged.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from core.domain.odds import american_to_decimal
from core.domain.timeparse import TimeParseError, from_micros, parse_utc

# Error classes raised for whole payloads.
BAD_JSON: Final = "bad_json"
BAD_ENCODING: Final = "bad_encoding"
BAD_CSV: Final = "bad_csv"
MISSING_FIELD: Final = "missing_field"
WRONG_SHAPE: Final = "wrong_shape"
UNKNOWN_SOURCE: Final = "unknown_source"
UNKNOWN_FORMAT: Final = "unknown_format"
BAD_ENVELOPE: Final = "bad_envelope"
JSON_DEPTH: Final = "json_depth"
# Error classes of parts of a payload.
UNKNOWN_MARKET: Final = "unknown_market"
UNKNOWN_SIDE: Final = "unknown_side"
UNKNOWN_STATUS: Final = "unknown_status"
TEAM_MISMATCH: Final = "team_mismatch"
AGGREGATE_BOOK: Final = "aggregate_book"
INVALID_SPLIT: Final = "invalid_split"
INCONSISTENT_MARKET: Final = "inconsistent_market"

MONEYLINE: Final = "moneyline"
SPREAD: Final = "spread"
TOTAL: Final = "total"
GAME_STATUSES: Final = frozenset({"scheduled", "in_progress", "final", "postponed"})


@dataclass(frozen=True, slots=True)
class Reject:
    """One refused part of a payload: what kind of problem, and where exactly."""

    error_class: str
    reason: str


class ParseError(ValueError):
    """The whole payload is unusable; ``error_class`` is the dead-letter error class."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(f"{error_class}: {reason}")
        self.error_class = error_class
        self.reason = reason


@dataclass(slots=True)
class Parsed:
    """Everything one envelope yielded: staging records and the parts refused."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    games: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: The payload lists no games at all (an Odds API ``[]``, SBD's ``"games": []``): a day
    #: without games is a normal answer, counted as such, not a dead letter.
    empty: bool = False

    def extend(self, other: Parsed) -> None:
        self.lines.extend(other.lines)
        self.splits.extend(other.splits)
        self.games.extend(other.games)
        self.rejects.extend(other.rejects)


class Context(NamedTuple):
    """What every record of one envelope shares: lineage and ingestion time. (A named tuple,
    not a frozen dataclass: one is made per raw record, and a frozen dataclass costs ~1 µs.)"""

    event_id: str
    source: str
    fetched_at: datetime
    request: Mapping[str, str]


class GameRef(NamedTuple):
    """A game as the records of it need it (a named tuple, for the same reason)."""

    game_id: str
    commence_time: datetime
    home: str
    away: str


def context_of(envelope: Mapping[str, Any]) -> Context:
    """Validate the envelope's own fields (not the payload) into a Context."""
    if type(envelope) is not dict and not isinstance(envelope, Mapping):  # dict: no ABC check
        raise ParseError(BAD_ENVELOPE, f"envelope is a {type(envelope).__name__}, not a record")
    event_id = envelope.get("event_id")
    source = envelope.get("source")
    fetched = envelope.get("fetched_at")
    if not isinstance(event_id, str) or not event_id:
        raise ParseError(MISSING_FIELD, "envelope has no event_id")
    if not isinstance(source, str) or not source:
        raise ParseError(MISSING_FIELD, f"envelope {event_id} has no source")
    if fetched is None:
        raise ParseError(MISSING_FIELD, f"envelope {event_id} has no fetched_at")
    try:
        fetched_at = from_micros(fetched) if type(fetched) is int else parse_utc(fetched)
    except (TimeParseError, OverflowError, OSError, ValueError) as exc:
        raise ParseError(TimeParseError.error_class, f"envelope fetched_at: {exc}") from None
    request = envelope.get("request") or {}
    if type(request) is not dict and not isinstance(request, Mapping):
        raise ParseError(BAD_ENVELOPE, f"envelope {event_id} request is not a map")
    return Context(event_id, source, fetched_at, request)


def payload_text(envelope: Mapping[str, Any]) -> str:
    """The payload as text (UTF-8, BOM tolerated); raises ParseError on bad bytes."""
    payload = envelope.get("payload")
    if isinstance(payload, str):
        return payload
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return bytes(payload).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ParseError(BAD_ENCODING, f"payload is not UTF-8: {exc}") from None
    if payload is None:
        raise ParseError(MISSING_FIELD, "envelope has no payload")
    raise ParseError(WRONG_SHAPE, f"payload is a {type(payload).__name__}, not bytes")


def load_json(envelope: Mapping[str, Any]) -> Any:
    """Decode a JSON payload (UTF-8); raises ParseError bad_encoding / bad_json / json_depth."""
    text = payload_text(envelope)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ParseError(BAD_JSON, f"payload is not JSON: {exc}") from None
    except RecursionError:  # json nests a call per level: 100,000 "[" must not crash anything
        raise ParseError(
            JSON_DEPTH,
            f"payload nests arrays or objects deeper than the decoder follows"
            f" (~{sys.getrecursionlimit():,} levels)",
        ) from None


def make_line(
    g: GameRef,
    book: str,
    market: str,
    side: str,
    line: float | None,
    price: int,
    event_time: datetime,
    ctx: Context,
) -> dict[str, Any]:
    """An OddsLine record (novig_prob is filled in by the validator, which sees both sides)."""
    dec = american_to_decimal(price)
    return {
        "game_id": g.game_id,
        "commence_time": g.commence_time,
        "home_team": g.home,
        "away_team": g.away,
        "book": book,
        "market": market,
        "side": side,
        "line": line,
        "price_american": price,
        "price_decimal": dec,
        "implied_prob": 1.0 / dec,
        "novig_prob": None,
        "event_time": event_time,
        "ingested_at": ctx.fetched_at,
        "source": ctx.source,
        "source_event_id": ctx.event_id,
    }


def make_split(
    g: GameRef,
    book: str,
    market: str,
    side: str,
    bets_pct: float,
    money_pct: float | None,
    bets: int | None,
    total_bets: int | None,
    event_time: datetime,
    ctx: Context,
) -> dict[str, Any]:
    """A BettingSplit record."""
    return {
        "game_id": g.game_id,
        "commence_time": g.commence_time,
        "home_team": g.home,
        "away_team": g.away,
        "source": ctx.source,
        "book": book,
        "market": market,
        "side": side,
        "bets_pct": bets_pct,
        "money_pct": money_pct,
        "bets": bets,
        "total_bets": total_bets,
        "event_time": event_time,
        "ingested_at": ctx.fetched_at,
        "source_event_id": ctx.event_id,
    }


def make_game(
    g: GameRef,
    game_number: int,
    status: str,
    event_time: datetime,
    ctx: Context,
    *,
    home_score: int | None = None,
    away_score: int | None = None,
    home_pitcher: str | None = None,
    away_pitcher: str | None = None,
) -> dict[str, Any]:
    """A Game record (latest known state of one game)."""
    return {
        "game_id": g.game_id,
        "home_team": g.home,
        "away_team": g.away,
        "commence_time": g.commence_time,
        "game_number": game_number,
        "status": status,
        "home_score": home_score,
        "away_score": away_score,
        "home_pitcher": home_pitcher,
        "away_pitcher": away_pitcher,
        "source": ctx.source,
        "event_time": event_time,
        "ingested_at": ctx.fetched_at,
        "source_event_id": ctx.event_id,
    }


def status_by_clock(commence_time: datetime, now: datetime) -> str:
    """Status of a game a feed still prices but does not describe: before first pitch or not."""
    return "scheduled" if now < commence_time else "in_progress"


def number_doubleheaders(keys: list[tuple[str, str, str, datetime]]) -> list[int]:
    """Game numbers for (date, away, home, commence) keys of one payload: 1, 2 by start time.

    A feed that lists both games of a doubleheader in one payload lets us number them; a
    payload with one game gets 1 (the collector may override through request["game_number"]).
    """
    order = sorted(range(len(keys)), key=lambda i: (keys[i][:3], keys[i][3]))
    numbers = [1] * len(keys)
    prev: tuple[str, str, str] | None = None
    n = 0
    for i in order:
        k = keys[i][:3]
        n = n + 1 if k == prev else 1
        prev = k
        numbers[i] = n
    return numbers


def to_int_or_none(value: object) -> int | None:
    """An int from int/integral float/numeric string, else None (scores, bet counts)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if f != f or f in (float("inf"), float("-inf")) or not f.is_integer():
        return None
    return int(f)


def to_float_or_none(value: object) -> float | None:
    """A finite float from a number or numeric string, else None."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return f
