"""De-duplication in event time: unchanged, changed, inserted in its place, or late.

The staging worker decides each candidate against its event-time predecessor, whatever order the
raw partitions delivered them in; beyond the allowed lateness (its game's newest observation
minus the lateness) a candidate is late, and the state it leaves is the same after a restart
from its changelog.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.runtime.changelog import latest
from streams.staging.dedupe import Deduplicator, PartitionState, fact_of

LINE = "oddsflow.staging.OddsLine"
GAME = "MLB-20260501-STL@PIT-1"
T0 = datetime(2026, 5, 1, 17, 0, tzinfo=UTC)


def _line(minute: float, price: int, book: str = "pinnacle") -> dict[str, Any]:
    return {
        "game_id": GAME, "commence_time": T0 + timedelta(hours=6), "book": book,
        "market": "moneyline", "side": "home", "price_american": price, "line": None,
        "event_time": T0 + timedelta(minutes=minute),
    }  # fmt: skip


def _fates(state: PartitionState, recs: list[dict[str, Any]]) -> list[str]:
    return [state.decide(fact_of(LINE, r)).fate for r in recs]


def test_in_order_it_is_the_plain_rule() -> None:
    recs = [_line(0, -110), _line(1, -110), _line(2, -120), _line(3, -110)]
    plain = Deduplicator({})
    assert _fates(PartitionState(), recs) == ["first", "unchanged", "changed", "changed"]
    assert [plain.check(LINE, r).emit for r in recs] == [True, False, True, True]


def test_an_older_observation_takes_its_place_in_event_time() -> None:
    state = PartitionState()
    assert _fates(state, [_line(0, -110), _line(6, -130)]) == ["first", "changed"]
    # minute 3 arrives last: its predecessor is minute 0 (-110), not the newest (-130)
    assert _fates(state, [_line(3, -120)]) == ["inserted"]
    assert _fates(state, [_line(4, -120)]) == ["unchanged"]  # its predecessor is minute 3
    assert _fates(state, [_line(2, -110)]) == ["unchanged"]  # same as minute 0, before minute 3
    assert _fates(state, [_line(3, -120)]) == ["unchanged"]  # a redelivery


def test_beyond_the_lateness_it_is_late_by_how_much() -> None:
    state = PartitionState(lateness=timedelta(minutes=10))
    _fates(state, [_line(0, -110), _line(30, -130)])
    d = state.decide(fact_of(LINE, _line(15, -125)))
    assert (d.emit, d.fate, d.late_by_us) == (False, "late", 15 * 60 * 1_000_000)
    # the game's newest counts, whichever book it came from
    _fates(state, [_line(45, -115, book="draftkings")])
    assert _fates(state, [_line(33, -140)]) == ["late"]
    assert _fates(state, [_line(36, -140)]) == ["changed"]


def _staged(arrival: list[dict[str, Any]], state: PartitionState) -> list[tuple[datetime, int]]:
    """(event time, price) of everything promoted, revived re-observations included (the
    position carries the candidate's index, as the worker's carries its repartition place)."""
    out = []
    for n, r in enumerate(arrival):
        d = state.decide(fact_of(LINE, r), b"", n, 0)
        if d.emit:
            out.append((r["event_time"], r["price_american"]))
        if d.revive is not None:
            again = arrival[int(d.revive[2].split(":")[0])]
            assert again["event_time"].timestamp() * 1_000_000 == d.revive[0]
            out.append((again["event_time"], again["price_american"]))
    return sorted(out)


def _as_of(steps: list[tuple[datetime, int]], t: datetime) -> int | None:
    value = None
    for at, v in steps:
        if at > t:
            break
        value = v
    return value


def test_a_record_that_swapped_places_with_its_successor_gives_the_ordered_history() -> None:
    rng = random.Random(5)
    recs = [_line(m * 0.5, rng.choice([-110, -115, -120])) for m in range(120)]
    ordered = _staged(recs, PartitionState())
    for j in range(len(recs) - 1):
        arrival = [*recs[:j], recs[j + 1], recs[j], *recs[j + 2 :]]
        got = _staged(arrival, PartitionState())
        assert [_as_of(got, r["event_time"]) for r in recs] == [
            _as_of(ordered, r["event_time"]) for r in recs
        ], j


def test_heavy_disorder_within_the_lateness_is_never_late_and_ends_on_the_newest_value() -> None:
    rng = random.Random(7)
    recs = [_line(m * 0.5, rng.choice([-110, -115, -120])) for m in range(400)]
    for seed in range(5):
        rng = random.Random(seed)
        arrival = sorted(recs, key=lambda r: r["event_time"] + timedelta(minutes=rng.random() * 9))
        state = PartitionState(lateness=timedelta(minutes=10))
        fates = [state.decide(fact_of(LINE, r)).fate for r in arrival]
        assert "late" not in fates
        got = _staged(arrival, PartitionState(lateness=timedelta(minutes=10)))
        assert got[-1][1] == recs[-1]["price_american"] or _as_of(got, recs[-1]["event_time"]) == (
            _as_of(_staged(recs, PartitionState()), recs[-1]["event_time"])
        )


def test_a_restored_state_decides_as_the_uninterrupted_one() -> None:
    rng = random.Random(9)
    recs = [
        _line(m * 0.25 + rng.random() * 5, rng.choice([-110, -115, -120]), rng.choice("ab"))
        for m in range(600)
    ]
    whole = PartitionState(lateness=timedelta(minutes=10), sweep_every=50)
    expected = _fates(whole, recs)
    for cut in (0, 1, 250, 599):
        first = PartitionState(lateness=timedelta(minutes=10), sweep_every=50)
        log = []
        got = _fates(first, recs[:cut])
        log += first.take_changes()
        second = PartitionState(lateness=timedelta(minutes=10), sweep_every=50)
        second.restore(latest(log))
        second._since_sweep = first._since_sweep
        got += _fates(second, recs[cut:])
        assert got == expected, cut
