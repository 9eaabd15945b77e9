"""Replay's time parsing and progress arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.argtypes import parse_time
from oddsflow.ops.replay import PartitionPlan, ReplayPlan, progress

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T10:30:00Z", datetime(2026, 6, 1, 10, 30, tzinfo=UTC)),
        ("2026-06-01T10:30", datetime(2026, 6, 1, 10, 30, tzinfo=UTC)),  # naive is UTC
        ("2026-06-01T12:30:00+02:00", datetime(2026, 6, 1, 10, 30, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("-2h", NOW - timedelta(hours=2)),
        ("1d ago", NOW - timedelta(days=1)),
        ("30s", NOW - timedelta(seconds=30)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_parse_time_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="'yesterday-ish' is not a time"):
        parse_time("yesterday-ish", now=NOW)


def test_progress_counts_only_the_planned_span() -> None:
    plan = ReplayPlan(
        "g",
        "staging",
        None,
        None,
        [],
        "sink",
        [PartitionPlan("t", 0, 100, 40, 100), PartitionPlan("t", 1, None, 0, 10)],
    )
    assert plan.records == 70
    assert progress(plan, {}) == 0  # not committed yet: still at the targets
    assert progress(plan, {("t", 0): 70}) == 30
    assert progress(plan, {("t", 0): 120, ("t", 1): 10}) == 70  # past --to counts as done
    assert progress(plan, {("t", 0): 10}) == 0  # behind the target (not reset yet)
