"""Per-minute quality reports of the staging worker (``operational.quality``).

Why: the roadmap's KPI (more than 95% of records pass the quality gates) must be readable from
Postgres per source and minute without re-reading the topics. The staging agents already count
every decision (``StagingCounters``); a faust timer turns those counts into one
``QualityReport`` per source and minute, which the sink upserts into ``<operational>.quality``.

Accounting, per source, at the record (part) level of the reconciliation:

- ``promoted`` and ``deduplicated``: staged candidates the dedupe agent decided (parts it
  suppressed as already decided before a crash, ``replayed``, are not decided again: not counted);
- ``dead_lettered``: dead-letter parts (a whole-record failure is one part, each refused book or
  side one), plus records quarantined by a quality gate when the agents count them;
- ``records_in = promoted + deduplicated + dead_lettered`` and
  ``pass_rate = (promoted + deduplicated) / records_in``: a de-duplicated record passed every
  check, it only repeated what was known.

Windows: the counts since the previous tick go to the minute the tick falls in, and every
``[pipeline] quality_report_seconds`` the minutes that changed are published again with their
totals so far (the table keeps the latest per source and minute: upsert). A last report is
published when the worker stops. The counts live in memory: they describe what this process
processed (after a crash, re-processed records are counted again; ``oddsflow pipeline quality``'s
reconciliation is the exact account). Several staging workers each publish their own totals for
the same key, so the table then holds one worker's share of that minute.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from oddsflow.settings import Settings
from oddsflow.topics import topic_name
from schemas.codec import default_codec

log = logging.getLogger("oddsflow.staging.quality")

TOPIC = "operational.quality"
SCHEMA = "oddsflow.operational.QualityReport"
STAGE = "staging"


@dataclass(slots=True)
class Tally:
    """Counts of one source in one window."""

    promoted: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0

    @property
    def records_in(self) -> int:
        return self.promoted + self.deduplicated + self.dead_lettered

    @property
    def pass_rate(self) -> float:
        n = self.records_in
        return (self.promoted + self.deduplicated) / n if n else 1.0

    def add(self, other: Tally) -> None:
        self.promoted += other.promoted
        self.deduplicated += other.deduplicated
        self.dead_lettered += other.dead_lettered

    def minus(self, other: Tally) -> Tally:
        return Tally(
            self.promoted - other.promoted,
            self.deduplicated - other.deduplicated,
            self.dead_lettered - other.dead_lettered,
        )


def _counter(counters: Any, name: str) -> Counter[str]:
    """A per-source counter of the agents, empty when this version of them has none."""
    value = getattr(counters, name, None)
    return value if isinstance(value, Counter) else Counter()


def totals(counters: Any) -> dict[str, Tally]:
    """Cumulative tallies per source from the agents' live counters."""
    promoted, dedup = _counter(counters, "promoted"), _counter(counters, "deduplicated")
    dead = _counter(counters, "raw_dead") + _counter(counters, "parts_dead")
    dead += _counter(counters, "quarantined")
    sources = set(promoted) | set(dedup) | set(dead)
    return {s: Tally(promoted[s], dedup[s], dead[s]) for s in sources}


def window_of(now: datetime) -> datetime:
    """The minute ``now`` falls in (UTC)."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


class QualityWindows:
    """Cumulative counters in, per-(source, minute) totals out. Pure, so it is unit-tested."""

    def __init__(self) -> None:
        self._seen: dict[str, Tally] = {}
        self._windows: dict[tuple[str, datetime], Tally] = {}
        self._changed: set[tuple[str, datetime]] = set()

    def observe(self, cumulative: dict[str, Tally], now: datetime) -> None:
        """Add what changed since the last observation to the minute of ``now``."""
        window = window_of(now)
        for source, tally in cumulative.items():
            delta = tally.minus(self._seen.get(source, Tally()))
            self._seen[source] = Tally(tally.promoted, tally.deduplicated, tally.dead_lettered)
            if delta.records_in == 0:
                continue
            key = (source, window)
            self._windows.setdefault(key, Tally()).add(delta)
            self._changed.add(key)
        # minutes before the previous one are final and published: forget them
        for key in [k for k in self._windows if (window - k[1]).total_seconds() > 60]:
            if key not in self._changed:
                del self._windows[key]

    def due(self) -> list[tuple[str, datetime, Tally]]:
        """The (source, minute, totals so far) changed since the last call, oldest first."""
        out = [(s, w, self._windows[(s, w)]) for s, w in sorted(self._changed, key=lambda k: k[1])]
        self._changed.clear()
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
    }


def register_quality_report(app: faust.App, settings: Settings, counters: Any) -> QualityWindows:
    """Publish ``counters`` as per-minute reports every ``quality_report_seconds`` and at stop."""
    topic = topic_name(settings, TOPIC)
    encode = default_codec().encoder(SCHEMA)
    windows = QualityWindows()

    async def publish() -> None:
        now = datetime.now(UTC)
        windows.observe(totals(counters), now)
        for source, window, tally in windows.due():
            value = encode(report(source, window, tally, now))
            await app.producer.send(topic, source.encode(), value, None, None, None)

    @app.timer(settings.pipeline.quality_report_seconds, name="staging-quality-report")
    async def quality_report() -> None:
        await publish()

    @app.on_before_shutdown.connect
    async def last_report(sender: Any, **kwargs: Any) -> None:
        """The consumer has stopped and the producer is flushed next: the final counts."""
        try:
            await publish()
        except Exception as exc:  # stopping must not fail over a metric
            log.warning("last quality report not published: %s", exc)

    return windows
