"""The de-dup state forgets games long past first pitch (event time), so it does not grow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.staging.dedupe import Decision, PartitionState, fact_of

LINE = "oddsflow.staging.OddsLine"
T0 = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)


def _line(game: str, commence: datetime, at: datetime, price: int, side: str) -> dict[str, Any]:
    return {
        "game_id": game, "commence_time": commence, "book": "pinnacle", "market": "moneyline",
        "side": side, "price_american": price, "line": None, "event_time": at,
    }  # fmt: skip


def _decide(state: PartitionState, rec: dict[str, Any]) -> Decision:
    return state.decide(fact_of(LINE, rec))


def test_games_past_the_ttl_are_forgotten_and_others_kept() -> None:
    state = PartitionState(ttl=timedelta(hours=36), sweep_every=10**9)
    early, late = "MLB-20260501-STL@PIT-1", "MLB-20260504-NYY@BOS-1"
    for side in ("home", "away"):
        _decide(state, _line(early, T0, T0 - timedelta(hours=1), -120, side))
    _decide(state, _line(late, T0 + timedelta(days=3), T0 + timedelta(hours=30), 110, "home"))
    assert state.sweep() == 0  # newest T0+30h: the early game is within 36 h of first pitch
    assert len(state) == 3
    _decide(state, _line(late, T0 + timedelta(days=3), T0 + timedelta(hours=37), 115, "home"))
    assert state.sweep() == 2
    assert len(state) == 1 and state.expired == 2 and list(state.first_pitch) == [late]
    # a straggler of the expired game is decided afresh
    again = _decide(state, _line(early, T0, T0 - timedelta(hours=1), -120, "home"))
    assert again.fate == "first"


def test_the_sweep_runs_by_itself_every_n_records() -> None:
    state = PartitionState(ttl=timedelta(hours=1), sweep_every=3)
    old = "MLB-20260501-STL@PIT-1"
    _decide(state, _line(old, T0, T0, -120, "home"))
    new = "MLB-20260502-STL@PIT-1"
    _decide(state, _line(new, T0 + timedelta(days=1), T0 + timedelta(hours=5), 100, "home"))
    assert len(state) == 2
    _decide(state, _line(new, T0 + timedelta(days=1), T0 + timedelta(hours=6), 105, "home"))
    assert len(state) == 1 and state.expired == 1


def test_without_a_ttl_nothing_expires() -> None:
    state = PartitionState(ttl=None, sweep_every=1)
    _decide(state, _line("MLB-20260501-STL@PIT-1", T0, T0, -120, "home"))
    _decide(state, _line("MLB-20260601-STL@PIT-1", T0, T0 + timedelta(days=60), 100, "away"))
    assert len(state) == 2 and state.expired == 0
