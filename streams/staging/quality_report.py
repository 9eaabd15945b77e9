"""Per-minute quality reports of the staging worker (``operational.quality``).

Why: the roadmap's KPI (more than 95% of records pass the quality gates) must be readable from
Postgres per source and minute without re-reading the topics. The staging task counts every
decision; this module turns the counts into one ``QualityReport`` per source and minute, which
the sink upserts into ``<operational>.quality``.

Accounting, per source, at the part level of the reconciliation:

- ``promoted``, ``deduplicated`` (unchanged: it repeated what was known) and ``late`` (older than
  its game's newest observation by more than the allowed lateness): staged candidates decided;
- ``dead_lettered``: dead-letter parts (a whole-record failure is one part, each refused book or
  side one; records the quality gate quarantines are dead letters too);
- ``records_in = promoted + deduplicated + late + dead_lettered`` and ``pass_rate = (records_in -
  dead_lettered) / records_in``: a late or unchanged record passed every check;
- ``empty``: raw records that held nothing (a slate without games), counted apart: they have no
  parts.

Several staging workers share the work, so no one process sees a source's whole minute. Every
``[pipeline] quality_report_seconds`` each worker writes what its counters gained, per (source,
minute), to an internal deltas topic keyed by source, in the same transaction as the decisions
they count; the worker that owns a deltas partition adds them up per (source, minute) in a
changelogged table and publishes the totals of each minute that changed. All of it is
transactional, so the counts are exact through crashes and restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import Settings

TOPIC = "operational.quality"
SCHEMA = "oddsflow.operational.QualityReport"
STAGE = "staging"
#: Minutes an aggregator keeps: a delta for an older minute restarts that minute's totals.
HORIZON = timedelta(minutes=15)


def deltas_topic(settings: Settings) -> str:
    """The internal topic of per-worker deltas."""
    return f"{settings.kafka.topic_prefix}oddsflow-staging-quality-deltas"


@dataclass(slots=True)
class Tally:
    """Counts of one source in one window."""

    promoted: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0
    late: int = 0
    empty: int = 0

    @property
    def records_in(self) -> int:
        return self.promoted + self.deduplicated + self.late + self.dead_lettered

    @property
    def pass_rate(self) -> float:
        n = self.records_in
        return (n - self.dead_lettered) / n if n else 1.0

    def add(self, other: Tally) -> None:
        self.promoted += other.promoted
        self.deduplicated += other.deduplicated
        self.dead_lettered += other.dead_lettered
        self.late += other.late
        self.empty += other.empty

    def as_list(self) -> list[int]:
        return [self.promoted, self.deduplicated, self.dead_lettered, self.late, self.empty]

    def encode(self, source: str, window: datetime) -> bytes:
        return json.dumps([source, int(window.timestamp()), *self.as_list()]).encode()

    @staticmethod
    def decode(value: bytes) -> tuple[str, datetime, Tally]:
        source, w, *counts = json.loads(value)
        return source, datetime.fromtimestamp(w, UTC), Tally(*counts)


def window_of(now: datetime) -> datetime:
    """The minute ``now`` falls in (UTC)."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


class Counts:
    """One worker's counts per (source, minute of processing) since the last ``take``."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, datetime], Tally] = {}
        self._minute: tuple[datetime, datetime] | None = None  # (a time, its minute)

    def tally(self, source: str, now: datetime) -> Tally:
        m = self._minute
        if m is None or m[0] != now:  # callers pass one time per turn: one truncation a turn
            m = self._minute = (now, window_of(now))
        key = (source, m[1])
        t = self._open.get(key)
        if t is None:
            t = self._open[key] = Tally()
        return t

    def take(self) -> list[tuple[str, datetime, Tally]]:
        out = [(s, w, t) for (s, w), t in sorted(self._open.items()) if t.as_list() != [0] * 5]
        self._open = {}
        return out


class Windows:
    """One deltas partition's totals per (source, minute), which changed, and its changelog."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, datetime], Tally] = {}
        self._changed: set[tuple[str, datetime]] = set()  # to report
        self._unsaved: set[tuple[str, datetime]] = set()  # to write to the changelog
        self._gone: set[tuple[str, datetime]] = set()

    @staticmethod
    def _key(source: str, window: datetime) -> bytes:
        return f"{source}|{int(window.timestamp())}".encode()

    def restore(self, entries: dict[bytes, bytes]) -> None:
        for _key, value in entries.items():
            source, window, tally = Tally.decode(value)
            self.totals[(source, window)] = tally

    def add(self, source: str, window: datetime, delta: Tally) -> None:
        key = (source, window)
        t = self.totals.get(key)
        if t is None:
            t = self.totals[key] = Tally()
        t.add(delta)
        self._changed.add(key)
        self._unsaved.add(key)

    def due(self) -> list[tuple[str, datetime, Tally]]:
        """(source, minute, totals so far) changed since the last call; old minutes forgotten."""
        out = [(s, w, self.totals[(s, w)]) for s, w in sorted(self._changed, key=lambda k: k[1])]
        self._changed.clear()
        if self.totals:
            horizon = max(w for _s, w in self.totals) - HORIZON
            for k in [k for k in self.totals if k[1] < horizon]:
                del self.totals[k]
                self._gone.add(k)
        return out

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        out: list[tuple[bytes, bytes | None]] = []
        for s, w in sorted(self._unsaved, key=lambda k: k[1]):
            t = self.totals.get((s, w))
            if t is not None:
                out.append((self._key(s, w), t.encode(s, w)))
        out += [(self._key(s, w), None) for s, w in sorted(self._gone, key=lambda k: k[1])]
        self._unsaved.clear()
        self._gone.clear()
        return out


def report(source: str, window: datetime, tally: Tally, now: datetime) -> dict[str, Any]:
    """The QualityReport record of one source and minute."""
    return {
        "source": source,
        "stage": STAGE,
        "window_start": window,
        "records_in": tally.records_in,
        "promoted": tally.promoted,
        "deduplicated": tally.deduplicated,
        "dead_lettered": tally.dead_lettered,
        "pass_rate": tally.pass_rate,
        "mean_score": None,
        "completeness": None,
        "accuracy": None,
        "consistency": None,
        "timeliness": None,
        "emitted_at": now,
        "late": tally.late,
        "empty": tally.empty,
    }
