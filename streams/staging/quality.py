"""Quality score of one staged record: completeness, accuracy, consistency, timeliness.

Why: validation refuses what cannot be true (a price of +50, a future timestamp); the quality
gate holds back what may be true but is doubtful enough that the features should not act on it —
a quote that sat 40 minutes before we fetched it and has no other side to check it against.
Each of the roadmap's four dimensions scores 0..1 and the score is their mean, so one weakness
alone rarely sinks a record but two do (threshold 0.8 by default,
``[pipeline] quality_threshold``). Pure: the record in, the score and its reasons out.

Per dimension (lines; splits and games use those that apply to them):
- completeness: the other side of the market is in the same payload (a line without it has no
  no-vig probability: 0.5); a split's money % present (0.5 without).
- accuracy: the pair's overround (implied probabilities' sum) within 1.10; 0.5 at the 1.20 that
  validation allows at most, linear between. A final game without a score: 0.5.
- consistency: a pre-game line quoted after first pitch (0.5); a split with more bets than bets in
  total (0.0); a game in progress before first pitch, or scheduled over an hour after it (0.5).
- timeliness: the quote's age at fetch (ingested_at − event_time): 1.0 up to 10 minutes, 0.0 from
  60 minutes, linear between; a split's: 1.0 up to an hour, 0.0 from six hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

LINE: Final = "oddsflow.staging.OddsLine"
SPLIT: Final = "oddsflow.staging.BettingSplit"
GAME: Final = "oddsflow.staging.Game"

FRESH: Final = timedelta(minutes=10)
STALE: Final = timedelta(minutes=60)
MAX_GOOD_OVERROUND: Final = 1.10
WORST_OVERROUND: Final = 1.20
HOUR: Final = timedelta(hours=1)
#: Splits accumulate over the day and sources refresh them slowly: an hour-old split is current.
SPLIT_FRESH: Final = timedelta(hours=1)
SPLIT_STALE: Final = timedelta(hours=6)


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


def _timeliness(
    rec: dict[str, Any],
    reasons: list[str],
    fresh: timedelta = FRESH,
    stale: timedelta = STALE,
    what: str = "quote",
) -> float:
    age = rec["ingested_at"] - rec["event_time"]
    if age <= fresh:
        return 1.0
    reasons.append(f"{what} {age.total_seconds() / 60:.0f} min older than fetch")
    if age >= stale:
        return 0.0
    return 1.0 - (age - fresh) / (stale - fresh)


def _mean(completeness: float, accuracy: float, consistency: float, timeliness: float) -> float:
    return round((completeness + accuracy + consistency + timeliness) / 4, 4)


def score_line(line: dict[str, Any]) -> Quality:
    """The quality of a validated OddsLine (novig_prob filled in when its pair was present)."""
    if (
        line["ingested_at"] - line["event_time"] <= FRESH
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
    timeliness = _timeliness(line, reasons)
    return Quality(_mean(completeness, accuracy, consistency, timeliness), tuple(reasons))


def score_split(split: dict[str, Any]) -> Quality:
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
    timeliness = _timeliness(split, reasons, SPLIT_FRESH, SPLIT_STALE, "split")
    return Quality(_mean(completeness, 1.0, consistency, timeliness), tuple(reasons))


def score_game(game: dict[str, Any]) -> Quality:
    """The quality of a validated Game record."""
    reasons: list[str] = []
    accuracy = consistency = 1.0
    status, at, start = game["status"], game["event_time"], game["commence_time"]
    if status == "final" and (game["home_score"] is None or game["away_score"] is None):
        accuracy = 0.5
        reasons.append("final without a score")
    if status in ("in_progress", "final") and at < start:
        consistency = 0.5
        reasons.append(f"{status} before first pitch")
    elif status == "scheduled" and at > start + HOUR:
        consistency = 0.5
        reasons.append("scheduled over an hour after first pitch")
    timeliness = _timeliness(game, reasons)
    return Quality(_mean(1.0, accuracy, consistency, timeliness), tuple(reasons))


SCORERS: Final = {LINE: score_line, SPLIT: score_split, GAME: score_game}


def score(schema: str, record: dict[str, Any]) -> Quality:
    """The quality of a validated staging record of ``schema``."""
    return SCORERS[schema](record)
