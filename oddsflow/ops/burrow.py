"""Consumer status over a sliding window of lag observations, the way Burrow evaluates it.

Pure functions: no Kafka, no clock. ``oddsflow lag`` feeds them the observations it samples (and
keeps in the operational schema), so the rules can be tested exhaustively with exact statuses.

Per partition, with the newest observation last (Burrow's rules, adapted to sampled offsets —
Kafka does not tell us when a commit happened, only what the committed offset is):

1. current lag 0 → OK (a caught-up consumer is never in trouble);
2. the committed offset went backwards between two observations → REWIND;
3. STOP (checked before anything can excuse it, as Burrow does): the group has no live member
   (nothing consumes it), or the committed offset has not moved for ``stop_after`` seconds of
   continuous lag — counted from the first observation of the current offset with lag > 0, so a
   consumer that was idle because nothing arrived is not taken for a stopped one;
4. lag was 0 somewhere in the window → OK (it keeps catching up);
5. the committed offset did not move over the whole window → STALL (alive, not progressing);
6. the offset moves but lag grew in every interval of the window → WARN (falling behind);
7. otherwise OK.

Rules 5 and 6 need ``min_observations`` in the window; fewer is not evidence of trouble.
A group's status is its
worst partition's (STOP > STALL > REWIND > WARN > OK).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    REWIND = "REWIND"
    STALL = "STALL"
    STOP = "STOP"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Status.OK: 0, Status.WARN: 1, Status.REWIND: 2, Status.STALL: 3, Status.STOP: 4}


@dataclass(frozen=True)
class Observation:
    """One sample of a partition: when, where the group is, where the log ends, how far behind."""

    at: float  # unix seconds
    committed: int | None  # None: the group never committed this partition
    end: int
    lag: int


@dataclass(frozen=True)
class Rules:
    """Window and thresholds of the evaluator."""

    window_seconds: float = 120.0  # observations older than this (before the newest) are ignored
    min_observations: int = 3
    stop_after: float = 60.0  # committed offset unchanged this long with lag → STOP


def in_window(observations: Sequence[Observation], rules: Rules) -> list[Observation]:
    """The observations inside the window, oldest first (input order does not matter)."""
    obs = sorted(observations, key=lambda o: o.at)
    if not obs:
        return []
    newest = obs[-1].at
    return [o for o in obs if newest - o.at <= rules.window_seconds]


def partition_status(
    observations: Sequence[Observation], now: float, members: int | None, rules: Rules = Rules()
) -> Status:
    """The status of one partition; ``members`` is the group's live members (None: unknown)."""
    obs = in_window(observations, rules)
    if not obs:
        return Status.OK
    last = obs[-1]
    if last.lag <= 0:
        return Status.OK
    offsets = [o.committed if o.committed is not None else -1 for o in obs]
    if any(b < a for a, b in pairwise(offsets)):
        return Status.REWIND
    current = offsets[-1]
    run_start = last.at  # since when the offset sits here with lag
    for o, off in zip(reversed(obs), reversed(offsets), strict=True):
        if off != current or o.lag <= 0:
            break
        run_start = o.at
    if members == 0 or now - run_start >= rules.stop_after:
        return Status.STOP
    if any(o.lag <= 0 for o in obs):
        return Status.OK
    if len(obs) < rules.min_observations:
        return Status.OK
    if all(x == current for x in offsets):
        return Status.STALL
    lags = [o.lag for o in obs]
    if all(b > a for a, b in pairwise(lags)):
        return Status.WARN
    return Status.OK


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: s.severity, default=Status.OK)


def group_status(
    partitions: Mapping[tuple[str, int], Sequence[Observation]],
    now: float,
    members: int | None,
    rules: Rules = Rules(),
) -> tuple[Status, dict[tuple[str, int], Status]]:
    """The group's status (its worst partition's) and each partition's."""
    each = {tp: partition_status(obs, now, members, rules) for tp, obs in partitions.items()}
    return worst(list(each.values())), each
