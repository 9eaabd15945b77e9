"""Quality score of one staged record: completeness, accuracy, consistency, timeliness.

Why: validation refuses what cannot be true (a price of +50, a future timestamp); the quality
gate holds back what may be true but is doubtful enough that the features should not act on it —
a quote that waited an hour between its fetch and its publication and has no other side to check
it against. Each of the roadmap's four dimensions scores 0..1 and the score is their mean, so one
weakness alone rarely sinks a record but two do (threshold 0.8 by default,
``[pipeline] quality_threshold``). Pure: the record and its raw record's :class:`Timing` in, the
score and its reasons out.

Per dimension (lines; splits and games use those that apply to them):
- completeness: the other side of the market is in the same payload (a line without it has no
  no-vig probability: 0.5); a split's money % present (0.5 without).
- accuracy: the pair's overround (implied probabilities' sum) within 1.10; 0.5 at the 1.20 that
  validation allows at most, linear between. A final game without a score: 0.5.
- consistency: a pre-game line quoted after first pitch (0.5); a split with more bets than bets in
  total (0.0); a game in progress before first pitch, or scheduled over an hour after it (0.5);
  a game final before first pitch (0.5) — except from a history file, whose rows carry the
  result on every row (Pinnacle), so "final" there is the file's way of telling the score.
- timeliness: the delay between when the quote was **observed** and when it was **published**
  into the pipeline — not the age of the price: a price a book has not changed for two hours is
  current when a poller has just fetched it. 1.0 up to 10 minutes, 0.0 from 60 minutes, linear
  between (the same for lines, splits and games: it judges the transport, not the data).

Where the two times come from (:func:`timing_of`):
- observed: the raw envelope's ``fetched_at`` (when the poller received the payload; every
  record of the payload carries it as ``ingested_at``);
- published: when the collector handed the record to Kafka (``Origin.timestamp_ms``, from the
  raw record's ``oddsflow-published-ms`` header: the record timestamp itself is the observation's
  time, see producers/publisher.py). A replay of the raw topic keeps the original publication
  time, so a backfill is judged as it was live. A record without the header (another producer)
  is judged by the processing time instead: never earlier than the publication, so a record
  judged stale with it is stale (a lagging consumer may over-judge such records).
  A negative delay (clocks of collector and broker apart) counts as 0.
- replayed timelines are not judged: a history file (source ``file``: Pinnacle, SBRO, archived
  JSON lines) was observed at each row's recorded time and is replayed on its own timeline, where
  the row is published when it was recorded; the wall clock of the replay says nothing about the
  quote. The simulator's ``fetched_at`` is simulated time (compressed ticks ending about now), a
  timeline of its own too. Both get a delay of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

LINE: Final = "oddsflow.staging.OddsLine"
SPLIT: Final = "oddsflow.staging.BettingSplit"
GAME: Final = "oddsflow.staging.Game"
#: Error class of records the gate quarantines (dead letters on dlq.staging).
QUALITY_GATE: Final = "quality_gate"

FRESH: Final = timedelta(minutes=10)
STALE: Final = timedelta(minutes=60)
MAX_GOOD_OVERROUND: Final = 1.10
WORST_OVERROUND: Final = 1.20
HOUR: Final = timedelta(hours=1)
ZERO: Final = timedelta(0)

#: Sources that replay a recorded history: their rows carry results ("final" on every row).
HISTORY_SOURCES: Final = frozenset({"file"})
#: Sources whose times are a timeline of their own, not this pipeline's clock: not judged.
OWN_TIMELINE_SOURCES: Final = HISTORY_SOURCES | {"simulator"}


@dataclass(frozen=True, slots=True)
class Timing:
    """What the gate knows of one raw record's times: the publish delay and whether it is a
    replayed history (the same for every record of the payload)."""

    delay: timedelta = ZERO  # published − observed, >= 0; 0 when not judged
    history: bool = False

    @property
    def timely(self) -> bool:
        """True when timeliness costs nothing (the common case, without building reasons)."""
        return self.delay <= FRESH


LIVE: Final = Timing()
#: The Timing of each own-timeline source, made once (a frozen dataclass costs ~1 µs to build).
_OWN_TIMELINES: Final = {s: Timing(ZERO, s in HISTORY_SOURCES) for s in OWN_TIMELINE_SOURCES}


def timing_of(
    source: str, observed_at: datetime, published_at: datetime | None, now: datetime
) -> Timing:
    """The Timing of a raw record of ``source`` observed (fetched) at ``observed_at`` and
    published at ``published_at`` (its Kafka timestamp; None: ``now``, the processing time)."""
    own = _OWN_TIMELINES.get(source)
    if own is not None:
        return own
    delay = (published_at or now) - observed_at
    return Timing(delay if delay > ZERO else ZERO)


@dataclass(frozen=True, slots=True)
class Quality:
    """A record's score (0..1, rounded to 4 places) and what lowered it, in dimension order."""

    score: float
    reasons: tuple[str, ...] = ()

    def refusal(self, threshold: float) -> str | None:
        """The quarantine reason when the score is under ``threshold``, else None."""
        if self.score >= threshold:
            return None
        why = ", ".join(self.reasons) or "no single cause"
        return f"quality score {self.score:.2f} < {threshold:.2f}: {why}"


PERFECT: Final = Quality(1.0)


def _timeliness(timing: Timing, reasons: list[str]) -> float:
    delay = timing.delay
    if delay <= FRESH:
        return 1.0
    reasons.append(f"published {delay.total_seconds() / 60:.0f} min after it was fetched")
    if delay >= STALE:
        return 0.0
    return 1.0 - (delay - FRESH) / (STALE - FRESH)


def _mean(completeness: float, accuracy: float, consistency: float, timeliness: float) -> float:
    return round((completeness + accuracy + consistency + timeliness) / 4, 4)


def score_line(line: dict[str, Any], timing: Timing = LIVE) -> Quality:
    """The quality of a validated OddsLine (novig_prob filled in when its pair was present)."""
    if (
        timing.delay <= FRESH
        and line["novig_prob"] is not None
        and line["event_time"] < line["commence_time"]
        and line["implied_prob"] <= line["novig_prob"] * MAX_GOOD_OVERROUND
    ):
        return PERFECT  # the common case, without building reasons
    reasons: list[str] = []
    completeness = accuracy = consistency = 1.0
    novig = line["novig_prob"]
    if novig is None:
        completeness = 0.5
        reasons.append("other side missing")
    else:
        overround = line["implied_prob"] / novig
        if overround > MAX_GOOD_OVERROUND:
            excess = (overround - MAX_GOOD_OVERROUND) / (WORST_OVERROUND - MAX_GOOD_OVERROUND)
            accuracy = max(0.5, 1.0 - 0.5 * excess)
            reasons.append(f"overround {overround:.3f} above {MAX_GOOD_OVERROUND:.2f}")
    if line["event_time"] >= line["commence_time"]:
        consistency = 0.5
        reasons.append("quoted after first pitch")
    timeliness = _timeliness(timing, reasons)
    return Quality(_mean(completeness, accuracy, consistency, timeliness), tuple(reasons))


def score_split(split: dict[str, Any], timing: Timing = LIVE) -> Quality:
    """The quality of a validated BettingSplit."""
    reasons: list[str] = []
    completeness = consistency = 1.0
    if split["money_pct"] is None:
        completeness = 0.5
        reasons.append("money % missing")
    bets, total = split["bets"], split["total_bets"]
    if bets is not None and total is not None and bets > total:
        consistency = 0.0
        reasons.append(f"{bets} bets of {total} in total")
    timeliness = _timeliness(timing, reasons)
    return Quality(_mean(completeness, 1.0, consistency, timeliness), tuple(reasons))


def score_game(game: dict[str, Any], timing: Timing = LIVE) -> Quality:
    """The quality of a validated Game record."""
    reasons: list[str] = []
    accuracy = consistency = 1.0
    status, at, start = game["status"], game["event_time"], game["commence_time"]
    if status == "final" and (game["home_score"] is None or game["away_score"] is None):
        accuracy = 0.5
        reasons.append("final without a score")
    if status in ("in_progress", "final") and at < start:
        if not (status == "final" and timing.history):
            consistency = 0.5
            reasons.append(f"{status} before first pitch")
    elif status == "scheduled" and at > start + HOUR:
        consistency = 0.5
        reasons.append("scheduled over an hour after first pitch")
    timeliness = _timeliness(timing, reasons)
    return Quality(_mean(1.0, accuracy, consistency, timeliness), tuple(reasons))


SCORERS: Final = {LINE: score_line, SPLIT: score_split, GAME: score_game}


def score(schema: str, record: dict[str, Any], timing: Timing = LIVE) -> Quality:
    """The quality of a validated staging record of ``schema`` from a raw record of ``timing``."""
    return SCORERS[schema](record, timing)
