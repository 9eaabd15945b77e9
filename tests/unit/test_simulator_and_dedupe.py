"""The simulator is deterministic and realistic; de-duplication keeps only real changes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from producers.simulator import ScriptedJump, Simulator, _Market, prob_to_american, shift_cents
from streams.staging.dedupe import Deduplicator

START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)


def test_same_seed_same_payloads_other_seed_other_payloads() -> None:
    a = [p for _, p, _ in Simulator(seed=3, start=START).envelopes()]
    b = [p for _, p, _ in Simulator(seed=3, start=START).envelopes()]
    c = [p for _, p, _ in Simulator(seed=4, start=START).envelopes()]
    assert a == b and a != c
    assert len(a) == 6 * 5 * 120


def test_default_output_is_what_it_was_before_the_jump_and_volatility_switches() -> None:
    h = hashlib.sha256()
    for eid, payload, _ in Simulator(seed=3, games=4, books=5, ticks=200, start=START).envelopes():
        h.update(eid.encode())
        h.update(payload)
    # digest of the same run at commit 36c4ee1, before ``market_jumps`` and ``volatility``
    assert h.hexdigest() == "7eb4f2d1827f8329e3ed058c0533998545e8953c561bf2c10da9df7afea13c80"


def test_market_jumps_off_keeps_the_drift_and_drops_only_the_jumps() -> None:
    game = Simulator(seed=3, games=1, start=START).schedule[0]
    on, off = _Market.open(game, ("pinnacle",), 3), _Market.open(game, ("pinnacle",), 3)
    gaps = []
    for _ in range(400):
        p_on, p_off = on.p_home, off.p_home
        on.step()
        off.step(jumps=False)
        assert abs(off.p_home - p_off) < 0.01  # drift only: sd 0.002 a tick
        gaps.append(round((on.p_home - p_on) - (off.p_home - p_off), 9))
    # the same draws: the two paths differ by the jumps alone (3 points, about 1 % of ticks)
    assert set(gaps) == {0.0, 0.03, -0.03}
    assert 1 <= sum(1 for g in gaps if g) <= 12


def test_volatility_scales_the_drift() -> None:
    game = Simulator(seed=3, games=1, start=START).schedule[0]
    loud, quiet = _Market.open(game, ("pinnacle",), 3), _Market.open(game, ("pinnacle",), 3)
    p0 = loud.p_home
    for _ in range(50):
        loud.step(jumps=False)
        quiet.step(volatility=0.0005, jumps=False)
    assert quiet.p_home - p0 == pytest.approx((loud.p_home - p0) / 4)


def test_prices_are_valid_american_odds_with_vig() -> None:
    for _, payload, _ in Simulator(seed=1, games=3, books=4, ticks=40, start=START).envelopes():
        event = json.loads(payload)
        for market in event["bookmakers"][0]["markets"]:
            prices = [o["price"] for o in market["outcomes"]]
            assert all(abs(p) >= 100 for p in prices)
            implied = sum(100 / (p + 100) if p > 0 else -p / (-p + 100) for p in prices)
            assert 1.0 < implied < 1.2, (market, prices)


def test_cents_scale() -> None:
    assert shift_cents(-105, 10) == 105
    assert shift_cents(-110, -20) == -130
    assert shift_cents(110, -20) == -110
    assert prob_to_american(0.5) == -100 and prob_to_american(0.25) == 300


def test_a_scripted_jump_moves_one_book_only() -> None:
    sim = Simulator(
        seed=2, games=1, books=2, ticks=3, start=START, drift=False,
        scripted_jumps=(ScriptedJump(0, "pinnacle", 2, -20),),
    )  # fmt: skip
    homes = {(q.book, q.tick): q.home_ml for q in sim.quotes()}
    assert homes[("pinnacle", 2)] == shift_cents(homes[("pinnacle", 1)], -20)
    assert homes[("draftkings", 2)] == homes[("draftkings", 1)]


def test_a_jump_on_both_sides_keeps_the_books_hold() -> None:
    jumps = (
        ScriptedJump(0, "pinnacle", 2, 20, both_sides=True),
        ScriptedJump(0, "pinnacle", 2, 20),
    )
    sim = Simulator(seed=2, games=1, books=1, ticks=3, start=START, drift=False,
                    scripted_jumps=jumps)  # fmt: skip
    q = {q.tick: q for q in sim.quotes()}
    assert q[2].home_ml == shift_cents(q[1].home_ml, 40)  # the two jumps add up
    assert q[2].away_ml == shift_cents(q[1].away_ml, -20)  # only one moves the away side


def _line(price: int, minutes: int) -> dict:
    return {
        "game_id": "MLB-20260401-STL@PIT-1", "book": "pinnacle", "market": "moneyline",
        "side": "home", "price_american": price, "line": None,
        "event_time": START + timedelta(minutes=minutes),
    }  # fmt: skip


def test_dedupe_emits_changes_and_never_re_emits_a_redelivery() -> None:
    d = Deduplicator({})
    schema = "oddsflow.staging.OddsLine"
    verdicts = [
        d.check(schema, _line(-110, 0)),  # first
        d.check(schema, _line(-110, 1)),  # unchanged snapshot
        d.check(schema, _line(-120, 2)),  # change
        d.check(schema, _line(-110, 0)),  # redelivery of the first: older, not a change
        d.check(schema, _line(-120, 2)),  # redelivery of the change
        d.check(schema, _line(-110, 3)),  # a real move back
    ]
    assert [v.emit for v in verdicts] == [True, False, True, False, False, True]
    assert [v.reason for v in verdicts] == [
        "first", "unchanged", "changed", "stale", "unchanged", "changed",
    ]  # fmt: skip


def test_a_whole_season_has_distinct_games_every_team_once_a_day() -> None:
    from core.domain.games import game_id

    sim = Simulator(seed=9, games=2430, books=10, ticks=1, start=START)
    ids = {game_id(g.commence, g.away, g.home, 1) for g in sim.schedule}
    assert len(ids) == 2430
    day_one = sim.schedule[:15]
    assert len({t for g in day_one for t in (g.home, g.away)}) == 30
    assert sum(1 for _ in sim.quotes()) == 2430 * 10


def test_simulated_books_are_distinct_real_books_after_canonicalisation() -> None:
    from core.domain.books import BOOKS as KNOWN
    from core.domain.books import lookup_book
    from core.formats import parse
    from producers.simulator import BOOKS

    canonical = [lookup_book(b) for b in BOOKS]
    assert None not in canonical, "every simulated book is a book staging knows"
    assert len(set(canonical)) == len(BOOKS) == 20
    assert set(canonical) <= KNOWN
    sim = Simulator(seed=5, games=1, books=20, ticks=1, start=START)
    staged = set()
    for eid, payload, fetched in sim.envelopes():
        env = {"event_id": eid, "source": "simulator", "fetched_at": fetched,
               "payload": payload, "request": {}}  # fmt: skip
        staged |= {ln["book"] for ln in parse(env).lines}
    assert staged == set(canonical)  # 20 books in, 20 books staged: none folded into another
