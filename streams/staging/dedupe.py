"""De-duplication: a staged record goes on only when its values changed for its identity.

Sources re-send unchanged prices every poll, and Kafka may redeliver a record after a retry or a
restart. The state per identity is (event time, values, tie-break): a record is new when its
values differ from the last ones seen AND it is not older than them; an older record (a
redelivery, a replay, an out-of-order snapshot) is never re-emitted, so A → B → A-redelivered
stays A → B.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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

_NOWHERE: Position = (-1, -1)

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
UNCHANGED, STALE, REPLAYED = (
    Verdict(False, "unchanged"),
    Verdict(False, "stale"),
    Verdict(False, "replayed"),
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


class PartitionState:
    """De-dup state of one repartition partition, derived from what the output topics hold.

    The outputs of one schema for one partition are a prefix of the decisions taken in input
    order (one producer per partition at a time, one in-flight request per broker), so after a
    crash: inputs up to the highest source offset found on that schema's output were decided and
    their emissions are there (suppress them as "replayed"); later inputs are decided against a
    state equal to what was emitted, exactly as the first time. State can never be ahead of the
    outputs, because it IS the outputs.
    """

    def __init__(self, ttl: timedelta | None = DEFAULT_TTL, sweep_every: int = 5000) -> None:
        self.dedupe = Deduplicator({})
        self.decided_upto: dict[str, Position] = {}  # schema → highest position on its output
        self.ttl_micros = None if ttl is None else int(ttl.total_seconds() * 1_000_000)
        self.sweep_every = sweep_every
        self.watermark = 0  # highest event time seen (micros): the clock the TTL runs on
        self.first_pitch: dict[str, int] = {}  # game id → commence time (micros)
        self._since_sweep = 0
        self.expired = 0

    def load(
        self, schema: str, record: dict[str, Any], source_offset: Position | int | None
    ) -> None:
        """Replay one record read back from an output topic, in output order."""
        fact = fact_of(schema, record)
        self._observe(fact)
        self.dedupe.store[fact[0]] = (fact[1], fact[3], fact[4])
        if source_offset is None:
            return
        pos = (source_offset, 0) if isinstance(source_offset, int) else source_offset
        if pos > self.decided_upto.get(schema, _NOWHERE):
            self.decided_upto[schema] = pos

    def check(self, schema: str, record: dict[str, Any], offset: int, index: int = 0) -> Verdict:
        """The verdict for part ``index`` of the input at repartition ``offset``."""
        return self.check_fact(schema, fact_of(schema, record), offset, index)

    def check_fact(self, schema: str, fact: Fact, offset: int, index: int = 0) -> Verdict:
        """As :meth:`check`, from the record's fact (the hot path: no decoding)."""
        self._observe(fact)
        upto = self.decided_upto.get(schema)
        if upto is not None and (offset, index) <= upto:
            return REPLAYED
        return self.dedupe.check_fact(fact)

    def _observe(self, fact: Fact) -> None:
        key, at, commence, _values, _tie = fact
        if at > self.watermark:
            self.watermark = at
        if commence is not None:
            self.first_pitch[key.split("|", 2)[1]] = commence
        self._since_sweep += 1
        if self._since_sweep >= self.sweep_every:
            self.sweep()

    def sweep(self) -> int:
        """Forget the identities of games that began more than the TTL before the watermark.

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
        store = self.dedupe.store
        keys = [k for k in store if k.split("|", 2)[1] in gone]
        for k in keys:
            del store[k]
        for g in gone:
            del self.first_pitch[g]
        self.expired += len(keys)
        return len(keys)

    def __len__(self) -> int:
        return len(self.dedupe.store)
