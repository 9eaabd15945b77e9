"""De-duplication: a staged record goes on only when its values changed for its identity.

Sources re-send unchanged prices every poll. ``Deduplicator`` is the plain in-order rule (a
record is new when its values differ from the last ones seen and it is not older than them), the
reference a test computes by hand; ``PartitionState`` is what the staging worker runs: the same
rule in event-time order, with lateness, insertion of out-of-order records and a changelog.
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from bisect import bisect_right
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

#: Header on every promoted record: the repartition position it was decided from, "offset:i"
#: (repartition offset, part index within that bundle) or "offset" (a one-record message: i = 0).
#: A rebuilt partition state uses it to tell replayed inputs from new ones.
SOURCE_OFFSET_HEADER = "oddsflow-staging-src"

#: A repartition position: (offset, part index). Parts of a bundle are decided in index order.
Position = tuple[int, int]


def position_header(offset: int, index: int) -> bytes:
    """The SOURCE_OFFSET_HEADER value of an output decided from part ``index`` at ``offset``."""
    return f"{offset}:{index}".encode()


def parse_position(value: bytes | str) -> Position:
    """A SOURCE_OFFSET_HEADER value back to a position ("17" → (17, 0), "17:3" → (17, 3))."""
    text = value.decode() if isinstance(value, bytes) else value
    offset, _, index = text.partition(":")
    return int(offset), int(index or 0)


#: How long after first pitch a game's identities are kept (event time): odds stop moving once a
#: game is under way, so the state holds a few days of games, not the season.
DEFAULT_TTL = timedelta(hours=36)

# identity fields → value fields, per staging schema
IDENTITY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "oddsflow.staging.OddsLine": (
        ("game_id", "book", "market", "side"),
        ("price_american", "line"),
    ),
    "oddsflow.staging.BettingSplit": (
        ("game_id", "source", "book", "market", "side"),
        ("bets_pct", "money_pct", "bets", "total_bets"),
    ),
    "oddsflow.staging.Game": (
        ("game_id",),
        ("status", "home_score", "away_score", "commence_time", "home_pitcher", "away_pitcher"),
    ),
}


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _plain(v: Any) -> Any:
    """A value as compared: datetimes as micros, numbers as floats (-0.0 == 0.0, 1 == 1.0)."""
    if isinstance(v, datetime):
        return _micros(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v) + 0.0
    return v


#: What de-duplication needs of a record, without the record: (identity, event time µs,
#: commence time µs or None, values as text, tie-break). The tie-break is a game's source event
#: id ("" for other schemas): see ``Deduplicator.check_fact``. The normalize agent computes it
#: from the record it has just built and ships it beside the encoded bytes, so the dedupe agent
#: never decodes a record (most are dropped as unchanged); a rebuild computes it from the decoded
#: outputs.
Fact = tuple[str, int, int | None, str, str]

_SHORT = {schema: schema.rsplit(".", 1)[-1] + "|" for schema in IDENTITY}
_LINE = "oddsflow.staging.OddsLine"
_GAME = "oddsflow.staging.Game"


_MICROS: dict[datetime, int] = {}
_AT = itemgetter(0)
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _micros_cached(t: datetime) -> int:
    """Micros of a timestamp; the records of one payload share a few, so most are hits."""
    m = _MICROS.get(t)
    if m is None:
        if len(_MICROS) >= 4096:
            _MICROS.clear()
        m = _MICROS[t] = _micros(t)
    return m


def _line_fact(record: dict[str, Any]) -> Fact:
    """fact_of for an OddsLine, written out: 6 of 7 staged parts of a simulator record are."""
    line, commence = record["line"], record.get("commence_time")
    return (
        f"OddsLine|{record['game_id']}|{record['book']}|{record['market']}|{record['side']}",
        _micros_cached(record["event_time"]),
        None if commence is None else _micros_cached(commence),
        repr((float(record["price_american"]) + 0.0, None if line is None else float(line) + 0.0)),
        "",
    )


def fact_of(schema: str, record: dict[str, Any]) -> Fact:
    """The de-dup fact of ``record`` (the same whether built by a parser or decoded)."""
    if schema == _LINE:
        return _line_fact(record)
    ident, value_fields = IDENTITY[schema]
    key = _SHORT[schema] + "|".join([str(record[f]) for f in ident])
    commence = record.get("commence_time")
    tie = str(record.get("source_event_id") or "").replace("\t", " ") if schema == _GAME else ""
    return (
        key,
        _micros(record["event_time"]),
        None if commence is None else _micros(commence),
        repr(tuple([_plain(record[f]) for f in value_fields])),
        tie,
    )


def encode_fact(fact: Fact) -> bytes:
    """A fact as bytes (tab-separated: identities, tie-breaks and ``repr`` of values hold no
    raw tab)."""
    key, at, commence, values, tie = fact
    return f"{key}\t{at}\t{'' if commence is None else commence}\t{tie}\t{values}".encode()


def decode_fact(data: bytes) -> Fact:
    key, at, commence, tie, values = data.decode().split("\t", 4)
    return key, int(at), int(commence) if commence else None, values, tie


@dataclass(frozen=True, slots=True)
class Verdict:
    emit: bool
    reason: str  # "changed", "first", "unchanged", "stale", "replayed"


FIRST, CHANGED = Verdict(True, "first"), Verdict(True, "changed")
UNCHANGED, STALE = (
    Verdict(False, "unchanged"),
    Verdict(False, "stale"),
)


class Deduplicator:
    """Decides per record whether it is a change; ``store``: identity → (event time, values)."""

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store

    @staticmethod
    def identity(schema: str, record: dict[str, Any]) -> str:
        ident, _ = IDENTITY[schema]
        return _SHORT[schema] + "|".join(str(record[f]) for f in ident)

    def check(self, schema: str, record: dict[str, Any]) -> Verdict:
        return self.check_fact(fact_of(schema, record))

    def check_fact(self, fact: Fact) -> Verdict:
        """Unchanged values are dropped, except a game's: several records can report the same
        game state at the same instant (two sources, two events of one poll), and which of them
        arrived first depends on how the raw topics interleave. The sink keeps the newest game
        row by (event time, source event id); passing on an equal state whose source event id
        is higher makes both end at the same row whatever the arrival order."""
        key, at, _commence, values, tie = fact
        seen = self.store.get(key)
        if seen is not None:
            if at < seen[0]:
                return STALE
            if seen[1] == values and (at != seen[0] or tie <= seen[2]):
                return UNCHANGED
        self.store[key] = (at, values, tie)
        return FIRST if seen is None else CHANGED

    def remember(self, schema: str, record: dict[str, Any]) -> None:
        """Take ``record`` as the last one emitted for its identity (state rebuilt from outputs)."""
        key, at, _commence, values, tie = fact_of(schema, record)
        self.store[key] = (at, values, tie)


class Decision:
    """What the partition state decided for one staged candidate, and why."""

    __slots__ = ("emit", "fate", "late_by_us", "revive")

    def __init__(
        self,
        emit: bool,
        fate: str,
        late_by_us: int = 0,
        revive: tuple[int, bytes, str] | None = None,
    ) -> None:
        self.emit = emit
        self.fate = fate  # "first", "changed", "inserted", "unchanged", "late"
        self.late_by_us = late_by_us
        #: (event time, record, repartition position) of an earlier-suppressed re-observation
        #: that the inserted record made a change: it is promoted now, at its own time
        self.revive = revive


D_FIRST, D_CHANGED = Decision(True, "first"), Decision(True, "changed")
D_INSERTED = Decision(True, "inserted")
D_UNCHANGED = Decision(False, "unchanged")

#: Changelog key prefix of a game's entry (its newest event time and first pitch); identities
#: never start with NUL.
GAME_PREFIX = b"\x00game|"


def _stored(entry: list[Any]) -> list[Any]:
    """A history entry as JSON can hold it (a re-observation's record in base64)."""
    if len(entry) == 3:
        return entry
    return [*entry[:4], b64encode(entry[4]).decode(), *entry[5:]]


class PartitionState:
    """De-dup state of one repartition partition: each identity's recent values in event time.

    Decisions follow event time, not arrival order (DESIGN.md, "Time"):

    * A candidate older than its game's newest observation by more than the allowed lateness is
      **late**: it goes to the dead-letter topic with how late it was, and changes nothing.
    * Otherwise it is compared with its event-time **predecessor** (the identity's last value at
      or before its time): equal values are **unchanged**; different values are promoted, as a
      **change** when nothing newer is known, else **inserted** in its place. A newer value that
      the inserted one makes look repeated stays: it was a true observation.
    * Each identity keeps the values within the lateness of its game's newest observation, plus
      the last one before that horizon (the predecessor of anything still admissible).

    Games are forgotten ``ttl`` after first pitch, in event time (the partition's newest), so a
    replayed season expires as the live one does. State changes are collected for the
    changelog (``take_changes``): one entry per identity whose values changed and one per game.
    The newest re-observation of a value is kept in memory only (writing it would cost a
    changelog entry per unchanged record, most of the input): after a restart, a late record
    cannot revive a re-observation made before the restart, the one decision that differs.
    """

    def __init__(
        self,
        lateness: timedelta = timedelta(minutes=10),
        ttl: timedelta | None = DEFAULT_TTL,
        sweep_every: int = 5000,
    ) -> None:
        self.lateness_us = int(lateness.total_seconds() * 1_000_000)
        self.ttl_micros = None if ttl is None else int(ttl.total_seconds() * 1_000_000)
        self.sweep_every = sweep_every
        #: identity -> [[at, values, tie(, re-observed at, its record, offset, k)], ...]
        self.history: dict[str, list[list[Any]]] = {}
        self._game_of: dict[str, str] = {}  # identity -> its game id
        self.newest: dict[str, int] = {}  # game id -> newest event time seen (µs)
        self.first_pitch: dict[str, int] = {}  # game id -> commence time (µs)
        self.watermark = 0  # newest event time of the partition (µs): the TTL's clock
        self.expired = 0
        self._since_sweep = 0
        self._dirty: set[str] = set()
        self._dirty_games: set[str] = set()
        self._gone: set[str] = set()
        self._gone_games: set[str] = set()

    def decide(
        self, fact: Fact, frame: bytes | None = None, offset: int = -1, k: int = 0
    ) -> Decision:
        """The decision for one staged candidate, from its de-dup fact. ``frame`` and its
        repartition position (``offset``, ``k``) are kept when it only re-observes the newest
        value: if a late record later changes that value before it, it is promoted then
        (``revive``). The hot path of the staging worker: one call per staged candidate."""
        key, at, commence, values, tie = fact
        game = self._game_of.get(key)
        if game is None:
            game = self._game_of[key] = key.split("|", 2)[1]
        newest = self.newest.get(game)
        if newest is None or at > newest:
            self.newest[game] = at
            self._dirty_games.add(game)
            if at > self.watermark:
                self.watermark = at
        elif at < newest - self.lateness_us:
            return Decision(False, "late", newest - at)
        if commence is not None and self.first_pitch.get(game) != commence:
            self.first_pitch[game] = commence
            self._dirty_games.add(game)
        self._since_sweep += 1
        if self._since_sweep >= self.sweep_every:
            self.sweep()
        h = self.history.get(key)
        if h is None:
            self.history[key] = [[at, values, tie]]
            self._dirty.add(key)
            return D_FIRST
        last = h[-1]
        if last[0] <= at and (len(last) == 3 or last[3] <= at):  # in order: the common case
            if last[1] == values and (last[0] != at or tie <= last[2]):
                if at > last[0] and frame is not None:  # the newest re-observation of the run
                    last[3:] = (at, frame, offset, k)  # in memory only: see the class docstring
                return D_UNCHANGED
            if last[0] == at:
                last[1], last[2] = values, tie
            else:
                h.append([at, values, tie])
                self._prune(h, game)
            self._dirty.add(key)
            return D_CHANGED
        return self._insert(key, h, at, values, tie)

    def _insert(self, key: str, h: list[list[Any]], at: int, values: str, tie: str) -> Decision:
        """A candidate older than its identity's newest observation: decided against its
        event-time predecessor; a re-observation of the predecessor's value after it becomes a
        change again (revived)."""
        i = bisect_right(h, at, key=_AT)  # h[:i] are at or before ``at``
        revive = None
        if i:
            pred = h[i - 1]
            if pred[1] == values and (pred[0] != at or tie <= pred[2]):
                return D_UNCHANGED
            if len(pred) > 3 and pred[3] > at:  # the run resumes at its re-observation
                revive = (pred[3], pred[4], position_header(pred[5], pred[6]).decode())
                h.insert(i, [pred[3], pred[1], pred[2]])
                del pred[3:]
            if pred[0] == at:
                pred[1], pred[2] = values, tie
            else:
                h.insert(i, [at, values, tie])
        else:
            h.insert(0, [at, values, tie])
        self._dirty.add(key)
        return Decision(True, "inserted", revive=revive) if revive else D_INSERTED

    def _prune(self, h: list[list[Any]], game: str) -> None:
        """Drop values no admissible candidate can follow (keep the one at the horizon)."""
        if len(h) > 2:
            cut = self.newest[game] - self.lateness_us
            if h[1][0] <= cut:
                i = bisect_right(h, cut, key=_AT)
                del h[: i - 1]

    def sweep(self) -> int:
        """Forget the games that began more than the TTL before the partition's newest event.

        Event time, not wall time: a replay of last season expires as the live feed would. A
        record of an expired game arriving later is decided afresh ("first").
        """
        self._since_sweep = 0
        if self.ttl_micros is None:
            return 0
        horizon = self.watermark - self.ttl_micros
        gone = {g for g, t in self.first_pitch.items() if t < horizon}
        if not gone:
            return 0
        keys = [k for k in self.history if k.split("|", 2)[1] in gone]
        for k in keys:
            del self.history[k]
            self._game_of.pop(k, None)
            self._dirty.discard(k)
            self._gone.add(k)
        for g in gone:
            del self.first_pitch[g]
            self.newest.pop(g, None)
            self._dirty_games.discard(g)
            self._gone_games.add(g)
        self.expired += len(keys)
        return len(keys)

    # -- changelog ---------------------------------------------------------------------------

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog entries since the last call (identities, games; None deletes)."""
        out: list[tuple[bytes, bytes | None]] = []
        history = self.history
        for key in self._dirty:
            doc = [_stored(e) for e in history[key]]
            out.append((key.encode(), _dumps(doc).encode()))
        for key in self._gone:
            out.append((key.encode(), None))
        for game in self._dirty_games:
            doc = [self.newest.get(game), self.first_pitch.get(game)]
            out.append((GAME_PREFIX + game.encode(), _dumps(doc).encode()))
        for game in self._gone_games:
            out.append((GAME_PREFIX + game.encode(), None))
        self._dirty.clear()
        self._gone.clear()
        self._dirty_games.clear()
        self._gone_games.clear()
        return out

    def restore(self, entries: dict[bytes, bytes]) -> None:
        """Install a partition's live changelog entries (``changelog.latest``)."""
        for key, value in entries.items():
            doc = json.loads(value)
            if key.startswith(GAME_PREFIX):
                game = key[len(GAME_PREFIX) :].decode()
                newest, commence = doc
                if newest is not None:
                    self.newest[game] = newest
                    self.watermark = max(self.watermark, newest)
                if commence is not None:
                    self.first_pitch[game] = commence
            else:
                self.history[key.decode()] = [
                    e if len(e) == 3 else [*e[:4], b64decode(e[4]), *e[5:]] for e in doc
                ]

    def __len__(self) -> int:
        return len(self.history)
