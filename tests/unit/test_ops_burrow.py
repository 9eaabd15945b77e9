"""The Burrow-style evaluator: exact statuses for each rule and their precedence."""

from __future__ import annotations

import pytest

from oddsflow.ops.burrow import Observation, Rules, Status, group_status, partition_status

RULES = Rules(window_seconds=100, min_observations=3, stop_after=30)


def obs(*rows: tuple[float, int | None, int]) -> list[Observation]:
    """(at, committed, end) rows; lag is end - committed (end when never committed)."""
    return [Observation(at, c, e, e - (c or 0)) for at, c, e in rows]


CASES = [
    ("no observations", [], 1, Status.OK),
    ("caught up now", obs((0, 5, 9), (10, 5, 9), (20, 9, 9)), 1, Status.OK),
    ("caught up, no members", obs((0, 9, 9)), 0, Status.OK),
    ("lag zero earlier in window", obs((0, 5, 5), (10, 5, 8), (20, 6, 9)), 1, Status.OK),
    ("moving, lag shrinking", obs((0, 0, 10), (10, 5, 12), (20, 10, 13)), 1, Status.OK),
    ("moving, lag flat", obs((0, 0, 10), (10, 5, 15), (20, 10, 20)), 1, Status.OK),
    (
        "moving, lag growing every interval",
        obs((0, 0, 10), (10, 5, 20), (20, 8, 30)),
        1,
        Status.WARN,
    ),
    (
        "moving, lag grew then fell",
        obs((0, 0, 10), (10, 1, 20), (20, 15, 22), (25, 16, 30)),
        1,
        Status.OK,
    ),
    ("growing but too few observations", obs((0, 0, 10), (10, 5, 20)), 1, Status.OK),
    (
        "offset stuck, member alive, short",
        obs((0, 5, 10), (10, 5, 12), (20, 5, 15)),
        1,
        Status.STALL,
    ),
    ("offset stuck, lag constant", obs((0, 5, 10), (10, 5, 10), (20, 5, 10)), 1, Status.STALL),
    ("offset stuck for stop_after", obs((0, 5, 10), (15, 5, 12), (30, 5, 15)), 1, Status.STOP),
    (
        "offset stuck, members unknown",
        obs((0, 5, 10), (10, 5, 12), (20, 5, 15)),
        None,
        Status.STALL,
    ),
    ("no members, one observation", obs((0, 5, 10)), 0, Status.STOP),
    ("no members, offset stuck", obs((0, 5, 10), (5, 5, 12)), 0, Status.STOP),
    ("no members, offset still moved in window", obs((0, 3, 10), (5, 5, 12)), 0, Status.STOP),
    ("no members, caught up before", obs((0, 5, 5), (5, 5, 12)), 0, Status.STOP),
    ("stopped after catching up, short", obs((0, 5, 5), (10, 5, 8), (20, 5, 9)), 1, Status.OK),
    ("never committed, no members", obs((0, None, 10), (5, None, 12)), 0, Status.STOP),
    ("offset went backwards", obs((0, 50, 60), (10, 20, 60), (20, 25, 61)), 1, Status.REWIND),
    ("rewind beats stop", obs((0, 50, 60), (10, 20, 60)), 0, Status.REWIND),
    (
        "rewind to reprocess but now caught up",
        obs((0, 50, 60), (10, 20, 60), (20, 60, 60)),
        1,
        Status.OK,
    ),
    (
        "old observations leave the window",
        obs((0, 5, 5), (150, 5, 10), (160, 5, 11), (170, 5, 12)),
        1,
        Status.STALL,
    ),
    ("order of input does not matter", obs((20, 8, 30), (0, 0, 10), (10, 5, 20)), 1, Status.WARN),
]


@pytest.mark.parametrize(
    ("observations", "members", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_partition_status(
    observations: list[Observation], members: int | None, expected: Status
) -> None:
    now = max((o.at for o in observations), default=0) + 1
    assert partition_status(observations, now, members, RULES) is expected


def test_stop_uses_the_clock_not_only_the_window() -> None:
    stuck = obs((0, 5, 10), (5, 5, 11), (10, 5, 12))
    assert partition_status(stuck, now=11, members=1, rules=RULES) is Status.STALL
    assert partition_status(stuck, now=31, members=1, rules=RULES) is Status.STOP


def test_stop_counts_only_time_with_lag() -> None:
    # idle for long (nothing to consume), then records arrive: not a stop until stop_after
    idle = obs((0, 5, 5), (40, 5, 5), (80, 5, 7))
    assert partition_status(idle, now=81, members=1, rules=RULES) is Status.OK
    assert partition_status(idle, now=110, members=1, rules=RULES) is Status.STOP
    # caught up once, then stuck with lag longer than stop_after: stopped despite the zero
    stuck = obs((0, 5, 5), (10, 5, 8), (20, 5, 9), (45, 5, 12))
    assert partition_status(stuck, now=46, members=1, rules=RULES) is Status.STOP


def test_group_status_is_the_worst_partition() -> None:
    parts = {
        ("t", 0): obs((0, 9, 9), (10, 12, 12), (20, 15, 15)),  # OK
        ("t", 1): obs((0, 0, 10), (10, 5, 20), (20, 8, 30)),  # WARN
        ("u", 0): obs((0, 5, 10), (10, 5, 12), (20, 5, 15)),  # STALL
    }
    status, each = group_status(parts, now=21, members=1, rules=RULES)
    assert each == {("t", 0): Status.OK, ("t", 1): Status.WARN, ("u", 0): Status.STALL}
    assert status is Status.STALL
    assert group_status({}, now=0, members=0, rules=RULES) == (Status.OK, {})


def test_faust_changelogs_are_state_not_lag() -> None:
    from oddsflow.ops.lag import is_internal_state_topic

    assert is_internal_state_topic("t1.oddsflow-features-features-state-changelog")
    assert is_internal_state_topic("oddsflow-staging-__assignor-__leader")
    assert not is_internal_state_topic("staging.odds_lines")
    assert not is_internal_state_topic("oddsflow-staging-staging-normalized")
