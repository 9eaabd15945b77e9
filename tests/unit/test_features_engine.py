"""Hand-made scenarios with exact expected values, each also checked against the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.settings import FeatureSettings
from streams.features.definitions import cents
from streams.features.engine import FeatureEngine, feed
from tests.support.features_reference import reference_features

T0 = datetime(2025, 6, 13, 16, 0, tzinfo=UTC)
GAME = "MLB-20250613-NYY@BOS-1"
COMMENCE = T0 + timedelta(hours=7)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def dec(a: int) -> float:
    return 1 + a / 100 if a >= 100 else 1 + 100 / abs(a)


def line(
    book: str,
    minutes: float,
    price: int,
    market: str = "moneyline",
    side: str = "home",
    points: float | None = None,
    novig: float | None = 0.5,
) -> dict[str, Any]:
    return {
        "game_id": GAME,
        "commence_time": COMMENCE,
        "home_team": "BOS",
        "away_team": "NYY",
        "book": book,
        "market": market,
        "side": side,
        "line": points,
        "price_american": price,
        "price_decimal": dec(price),
        "implied_prob": 1 / dec(price),
        "novig_prob": novig,
        "event_time": at(minutes),
        "ingested_at": at(minutes),
        "source": "test",
        "source_event_id": f"{book}-{minutes}-{side}",
    }


def split(
    minutes: float,
    side: str,
    bets_pct: float,
    money_pct: float | None,
    total_bets: int | None = 500,
    market: str = "moneyline",
) -> dict[str, Any]:
    return {
        "game_id": GAME,
        "commence_time": COMMENCE,
        "home_team": "BOS",
        "away_team": "NYY",
        "source": "sbd",
        "book": "consensus",
        "market": market,
        "side": side,
        "bets_pct": bets_pct,
        "money_pct": money_pct,
        "bets": None if total_bets is None else round(total_bets * bets_pct / 100),
        "total_bets": total_bets,
        "event_time": at(minutes),
        "ingested_at": at(minutes),
        "source_event_id": f"split-{minutes}-{side}",
    }


def run(
    lines: list[dict[str, Any]],
    splits: list[dict[str, Any]] | None = None,
    games: list[dict[str, Any]] | None = None,
    settings: FeatureSettings | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Engine output, asserted equal to the reference's before it is returned."""
    settings = settings or FeatureSettings()
    events = [("line", r) for r in lines] + [("split", s) for s in splits or []]
    events += [("game", g) for g in games or []]
    events.sort(key=lambda e: e[1]["event_time"])
    out = feed(FeatureEngine(settings), events)
    ref = reference_features(lines, splits, games, settings)
    assert sorted(map(repr, out)) == sorted(map(repr, ref))
    return out


def of(out: list[tuple[str, dict[str, Any]]], topic: str, **match: Any) -> list[dict[str, Any]]:
    return [r for t, r in out if t == topic and all(r[k] == v for k, v in match.items())]


def test_cents_scale() -> None:
    assert cents(-105) == -5.0
    assert cents(105) == 5.0
    assert cents(105) - cents(-105) == 10.0
    assert cents(-150) == -50.0


def test_twenty_cent_jump_is_four_cents_a_minute_over_five_minutes() -> None:
    out = run([line("dk", 0, -110), line("dk", 10, 110)])
    v5 = of(out, "curated.line_velocity", book="dk", window_minutes=5, event_time=at(10))
    assert len(v5) == 1
    assert v5[0]["unit"] == "cents"
    assert (v5[0]["value"], v5[0]["value_before"], v5[0]["change"]) == (10.0, -10.0, 20.0)
    assert v5[0]["velocity"] == 4.0
    # nothing quoted 15 minutes earlier: the first value in the window is the base
    v15 = of(out, "curated.line_velocity", book="dk", window_minutes=15, event_time=at(10))[0]
    assert v15["value_before"] is None
    assert v15["change"] == 20.0
    assert v15["velocity"] == pytest.approx(20 / 15)
    # one book: the cross-book median moves the same way
    med = of(out, "curated.line_velocity", book="median", window_minutes=5, event_time=at(10))
    assert med[0]["velocity"] == 4.0


def test_minus_105_to_plus_105_is_ten_cents() -> None:
    out = run([line("dk", 0, -105), line("dk", 6, 105)])
    v = of(out, "curated.line_velocity", book="dk", window_minutes=5, event_time=at(6))[0]
    assert v["change"] == 10.0
    assert v["velocity"] == 2.0


def test_spread_price_only_change_is_reported_in_cents() -> None:
    lines = [
        line("dk", 0, 150, "spread", "home", points=-1.5),
        line("dk", 10, 130, "spread", "home", points=-1.5),
        line("dk", 20, -110, "spread", "home", points=-1.0),
    ]
    out = run(lines)
    price_move = of(out, "curated.line_velocity", book="dk", window_minutes=5, event_time=at(10))
    assert (price_move[0]["unit"], price_move[0]["change"]) == ("cents", -20.0)
    line_move = of(out, "curated.line_velocity", book="dk", window_minutes=5, event_time=at(20))
    assert (line_move[0]["unit"], line_move[0]["change"]) == ("points", 0.5)


def test_cross_book_median_velocity() -> None:
    lines = [line("a", 0, -110), line("b", 0, -120), line("c", 0, -130), line("a", 10, -150)]
    out = run(lines)
    med = of(out, "curated.line_velocity", book="median", window_minutes=5, event_time=at(10))[0]
    # books at t: -50, -20, -30 cents → median -30; at t-5: -10, -20, -30 → -20
    assert (med["value"], med["value_before"], med["change"], med["velocity"]) == (
        -30.0,
        -20.0,
        -10.0,
        -2.0,
    )


STEAM = [
    *(line(b, 0, -110) for b in "abcd"),
    line("a", 10, -125),  # 15 cents toward home
    line("b", 11, -120),  # 10
    line("c", 12, -130),  # 20 → third book: steam at 12
    line("d", 13, -125),  # same move continues: no new announcement
    line("a", 16, -126),  # still inside the move
]


def test_three_books_make_exactly_one_steam_move() -> None:
    out = run(STEAM)
    moves = of(out, "curated.steam_moves")
    assert len(moves) == 1
    m = moves[0]
    assert m["move_id"] == f"{GAME}|moneyline|home|{at(12).isoformat()}"
    assert m["direction"] == "home"
    assert m["detected_at"] == at(12)
    assert m["books"] == ["a", "b", "c"]
    assert (m["first_mover"], m["first_move_at"]) == ("a", at(10))
    assert m["magnitude"] == 15.0
    assert (m["confidence"], m["books_quoting"]) == (0.75, 4)
    assert (m["unit"], m["window_minutes"]) == ("cents", 5)


def test_steam_is_announced_again_after_lapsing_for_a_whole_window() -> None:
    again = [line("a", 40, -140), line("b", 41, -135), line("c", 42, -145)]
    out = run(STEAM + again)
    moves = of(out, "curated.steam_moves")
    assert [m["detected_at"] for m in moves] == [at(12), at(42)]
    assert moves[1]["books"] == ["a", "b", "c"]
    assert moves[1]["magnitude"] == 15.0


def test_two_books_are_not_steam() -> None:
    out = run([line("a", 0, -110), line("b", 0, -110), line("a", 1, -130), line("b", 2, -130)])
    assert of(out, "curated.steam_moves") == []


def test_consensus_median_spread_and_best_price() -> None:
    lines = [
        line("a", 0, -110, novig=0.50),
        line("b", 1, -105, novig=0.52),
        line("c", 2, -120, novig=0.56),
    ]
    out = run(lines)
    c = of(out, "curated.consensus", event_time=at(2))[0]
    assert c["median_novig_prob"] == 0.52
    assert c["spread_novig_prob"] == pytest.approx(0.06)
    assert (c["best_price_american"], c["best_book"], c["book_count"]) == (-105, "b", 3)
    assert c["median_line"] is None


def test_sharp_action_tiers_and_bet_minimums() -> None:
    splits = [
        split(1, "home", 40, 52, total_bets=60),  # +12, 60 bets: moderate
        split(2, "home", 40, 52, total_bets=40),  # +12 but 40 bets: nothing
        split(3, "home", 40, 57, total_bets=60),  # +17: strong
        split(4, "home", 40, 62, total_bets=150),  # +22, 150 bets: premium
        split(5, "home", 40, 62, total_bets=80),  # +22 but < 100 bets: strong
        split(6, "home", 40, 48, total_bets=500),  # +8: nothing
        split(7, "home", 40, None, total_bets=500),  # no money split: nothing
    ]
    out = run([line("a", 0, -110)], splits)
    got = [(s["event_time"], s["tier"]) for s in of(out, "curated.sharp_signals")]
    assert got == [(at(1), "moderate"), (at(3), "strong"), (at(4), "premium"), (at(5), "strong")]
    s = of(out, "curated.sharp_signals", event_time=at(4))[0]
    assert (s["signal_type"], s["side"], s["tickets_pct"], s["money_pct"]) == (
        "sharp_action",
        "home",
        40,
        62,
    )
    assert (s["split_source"], s["book"], s["line_move"], s["unit"]) == (
        "sbd",
        "consensus",
        0.0,
        "cents",
    )


@pytest.mark.parametrize(
    ("away_tickets", "tier"), [(50, None), (55, None), (56, "55"), (70, "65"), (80, "75")]
)
def test_reverse_line_movement_tiers(away_tickets: float, tier: str | None) -> None:
    # home moneyline falls (money on home) while the public is on the away side
    lines = [line("a", 0, -110), line("b", 0, -110), line("a", 20, -130), line("b", 25, -130)]
    splits = [split(10, "away", away_tickets, None, total_bets=None)]
    out = run(lines, splits)
    rlm = of(out, "curated.sharp_signals", signal_type="reverse_line_movement")
    if tier is None:
        assert rlm == []
        return
    assert len(rlm) == 1  # raised when the median moved, not re-raised at the next tick
    r = rlm[0]
    assert (r["side"], r["tier"], r["event_time"]) == ("home", tier, at(20))
    assert r["tickets_pct"] == 100 - away_tickets
    # median of (-30, -10) = -20 minus -10 at the start: 10 cents toward home
    assert (r["line_move"], r["unit"]) == (-10.0, "cents")


def _rlm_times(out: list[tuple[str, dict[str, Any]]]) -> list[tuple[datetime, str, str]]:
    rlm = of(out, "curated.sharp_signals", signal_type="reverse_line_movement")
    return [(r["event_time"], r["side"], r["tier"]) for r in rlm]


def test_reverse_line_movement_needs_the_minimum_move() -> None:
    # 80 % of tickets on away; the home moneyline falls 5 cents, then 10 in all
    lines = [line("a", 0, -110), line("b", 0, -110), line("a", 5, -115), line("b", 6, -115)]
    lines += [line("a", 20, -120), line("b", 21, -120)]
    splits = [split(1, "away", 80, None, total_bets=None)]
    assert _rlm_times(run(lines, splits)) == [(at(21), "home", "75")]
    # with no minimum, the median's first 2.5 cents are already RLM (as before the minimum)
    loose = FeatureSettings(rlm_min_move_cents=0)
    assert _rlm_times(run(lines, splits, settings=loose)) == [(at(5), "home", "75")]


def test_reverse_line_movement_minimum_in_points_on_spreads() -> None:
    def sp(book: str, minutes: float, price: int, points: float) -> dict[str, Any]:
        return line(book, minutes, price, market="spread", points=points)

    lines = [sp("a", 0, -110, -1.5), sp("b", 0, -110, -1.5)]
    lines += [sp("a", 5, -130, -1.5), sp("b", 5, -130, -1.5)]  # price only: not a line move
    splits = [split(1, "away", 70, None, total_bets=None, market="spread")]
    assert _rlm_times(run(lines, splits)) == []
    lines += [sp("a", 10, -110, -2.0), sp("b", 11, -110, -2.0)]  # half a point toward home
    out = run(lines, splits)
    assert _rlm_times(out) == [(at(11), "home", "65")]
    r = of(out, "curated.sharp_signals", signal_type="reverse_line_movement")[0]
    assert (r["line_move"], r["unit"]) == (-0.5, "points")


def test_reverse_line_movement_is_one_signal_until_it_lapses_for_a_lookback() -> None:
    lines = [line(b, 0, -110) for b in "abc"]
    lines += [line("a", 10, -120), line("b", 10, -120)]  # median -10: raised
    lines += [line("b", 12, -118)]  # median 8 cents: below the minimum
    lines += [line("b", 14, -121)]  # 10 again within the lookback: the same RLM
    lines += [line("a", 20, -110), line("b", 20, -110)]  # back where it was
    lines += [line("a", 80, -120), line("b", 80, -120)]  # 66 minutes later: a new RLM
    splits = [split(5, "away", 80, None, total_bets=None)]
    assert _rlm_times(run(lines, splits)) == [(at(10), "home", "75"), (at(80), "home", "75")]


def test_late_events_are_counted_not_merged() -> None:
    engine = FeatureEngine(FeatureSettings(allowed_lateness_minutes=10))
    out = engine.process_line(line("a", 0, -110))
    out += engine.process_line(line("a", 30, -120))  # watermark 20
    assert engine.process_line(line("a", 5, -200)) == []
    out += engine.flush()
    assert engine.late_count == 1
    late = engine.drain_late()
    assert late == [{"game_id": GAME, "kind": "L", "event_time": at(5), "watermark": at(20)}]
    assert engine.drain_late() == []
    values = [r["value"] for t, r in out if t == "curated.line_velocity" and r["book"] == "a"]
    assert -100.0 not in values
    assert sorted(set(values)) == [-20.0, -10.0]


def test_within_lateness_is_merged_in_event_time_order() -> None:
    engine = FeatureEngine(FeatureSettings(allowed_lateness_minutes=10))
    events = [line("a", 0, -110), line("a", 8, -130), line("a", 4, -120), line("a", 30, -110)]
    out = feed(engine, [("line", e) for e in events])
    assert engine.late_count == 0
    v = of(out, "curated.line_velocity", book="a", window_minutes=5, event_time=at(8))[0]
    # as-of at 8 - 5 = 3 is the value of 0 (-10 cents), whatever the arrival order
    assert (v["value"], v["value_before"], v["change"]) == (-30.0, -10.0, -20.0)


def test_history_is_pruned_and_expire_drops_games() -> None:
    engine = FeatureEngine()
    for i in range(3000):  # two days of ticks every minute, alternating prices
        engine.process_line(line("a", i, -110 if i % 2 else -115))
    # 60-minute largest window (the book's history and the cross-book median's, ~61 points
    # each) + 10-minute lateness buffer: bounded, not 3000
    assert engine.state_size() < 150
    assert engine.game_ids() == [GAME]
    engine.expire(COMMENCE - timedelta(hours=1))
    assert engine.game_ids() == [GAME]  # first pitch is not before the cut yet
    engine.expire(COMMENCE + timedelta(hours=6))
    assert engine.game_ids() == []
    assert engine.state_size() == 0


def test_final_game_fills_targets_of_the_feature_vector() -> None:
    lines = [
        line("a", 0, -150, novig=0.58),
        line("b", 0, -150, novig=0.58),
        line("a", 430, -160, novig=0.6),  # after first pitch: not part of the closing vector
    ]
    game = {
        "game_id": GAME,
        "commence_time": COMMENCE,
        "home_team": "BOS",
        "away_team": "NYY",
        "status": "final",
        "home_score": 5,
        "away_score": 3,
        "event_time": COMMENCE + timedelta(hours=3),
        "ingested_at": COMMENCE + timedelta(hours=3),
        "source_event_id": "g1",
    }
    out = run(lines, games=[game])
    vectors = of(out, "curated.feature_vectors")
    assert len(vectors) == 2
    pre, final = vectors
    assert pre["event_time"] == final["event_time"] == COMMENCE
    assert (pre["actual_outcome"], pre["profit_loss"]) == (None, None)
    assert final["actual_outcome"] == "win"
    assert final["profit_loss"] == pytest.approx(100 / 150)
    assert final["cross_book_consensus"] == 0.58
    assert (final["line_velocity"], final["movement_consistency"]) == (None, 1.0)
    assert (final["steam_detected"], final["rlm_indicator"], final["sharp_action_score"]) == (
        False,
        False,
        0.0,
    )


def test_a_score_before_first_pitch_waits_for_it() -> None:
    """Captures (Pinnacle) carry the final score on every pre-game row: the vectors are still
    as of first pitch, with every market quoted by then, not frozen at the first row."""

    def final(minutes: float) -> dict[str, Any]:
        return {
            "game_id": GAME, "commence_time": COMMENCE, "home_team": "BOS", "away_team": "NYY",
            "status": "final", "home_score": 2, "away_score": 3, "event_time": at(minutes),
            "ingested_at": at(minutes), "source_event_id": f"g{minutes}",
        }  # fmt: skip

    lines = [
        line("a", 0, -150, novig=0.58),
        line("a", 120, -105, market="total", side="over", points=8.5, novig=0.5),  # later market
        line("a", 300, -140, novig=0.56),
    ]
    out = run(lines, games=[final(0), final(120)])
    vectors = of(out, "curated.feature_vectors")
    assert sorted((v["market"], str(v["actual_outcome"])) for v in vectors) == [
        ("moneyline", "None"), ("moneyline", "loss"), ("total", "None"), ("total", "loss"),
    ]  # fmt: skip
    # the moneyline as of first pitch (minute 300), not as of the first row (0.58)
    assert {v["cross_book_consensus"] for v in vectors if v["market"] == "moneyline"} == {0.56}


def test_bench_runs_on_synthetic_lines_without_late_events() -> None:
    from bench.engine_rate import bench_engine

    result = bench_engine(10_000)
    assert result["lines"] == 10_000
    assert result["late"] == 0
    assert result["lines_per_s"] > 0
    # expiry bounds the state: a line leaves history, median points and quotes (three entries
    # each) once its game's window has passed, so the peak stays well under one entry per line
    assert 0 < result["peak_state_size"] < 10_000
