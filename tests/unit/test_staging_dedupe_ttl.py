"""The de-dup state forgets games long past first pitch (event time), so it does not grow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.staging.dedupe import PartitionState

LINE = "oddsflow.staging.OddsLine"
T0 = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)


def _line(game: str, commence: datetime, at: datetime, price: int, side: str) -> dict[str, Any]:
    return {
        "game_id": game, "commence_time": commence, "book": "pinnacle", "market": "moneyline",
        "side": side, "price_american": price, "line": None, "event_time": at,
    }  # fmt: skip


def test_games_past_the_ttl_are_forgotten_and_others_kept() -> None:
    state = PartitionState(ttl=timedelta(hours=36), sweep_every=10**9)
    early, late = "MLB-20260501-STL@PIT-1", "MLB-20260504-NYY@BOS-1"
    for side in ("home", "away"):
        state.check(LINE, _line(early, T0, T0 - timedelta(hours=1), -120, side), 0)
    state.check(LINE, _line(late, T0 + timedelta(days=3), T0 + timedelta(hours=30), 110, "home"), 1)
    assert state.sweep() == 0  # watermark T0+30h: the early game is within 36 h of first pitch
    assert len(state) == 3
    state.check(LINE, _line(late, T0 + timedelta(days=3), T0 + timedelta(hours=37), 115, "home"), 2)
    assert state.sweep() == 2
    assert len(state) == 1 and state.expired == 2 and list(state.first_pitch) == [late]
    # a straggler of the expired game is decided afresh
    again = state.check(LINE, _line(early, T0, T0 - timedelta(hours=1), -120, "home"), 3)
    assert again.reason == "first"


def test_the_sweep_runs_by_itself_every_n_records() -> None:
    state = PartitionState(ttl=timedelta(hours=1), sweep_every=3)
    old = "MLB-20260501-STL@PIT-1"
    state.check(LINE, _line(old, T0, T0, -120, "home"), 0)
    new = "MLB-20260502-STL@PIT-1"
    state.check(LINE, _line(new, T0 + timedelta(days=1), T0 + timedelta(hours=5), 100, "home"), 1)
    assert len(state) == 2
    state.check(LINE, _line(new, T0 + timedelta(days=1), T0 + timedelta(hours=6), 105, "home"), 2)
    assert len(state) == 1 and state.expired == 1


def test_without_a_ttl_nothing_expires() -> None:
    state = PartitionState(ttl=None, sweep_every=1)
    state.check(LINE, _line("MLB-20260501-STL@PIT-1", T0, T0, -120, "home"), 0)
    state.check(LINE, _line("MLB-20260601-STL@PIT-1", T0, T0 + timedelta(days=60), 100, "away"), 1)
    assert len(state) == 2 and state.expired == 0
