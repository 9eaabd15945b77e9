"""Engine == reference, value for value, on the real Pinnacle 2016 line history.

The CSV is the repository's fixture (tests/fixtures/pinnacle, GPL-3 data of pinnacle.data). To
exercise the cross-book features on real movements, two more "books" replay Pinnacle's history
shifted by 90 s and 4 min: real shapes, three books, steam moves that really happen.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.settings import FeatureSettings
from streams.features.engine import FeatureEngine, feed
from tests.fixtures_path import PINNACLE as DATA
from tests.support.features_reference import reference_features


def _american(cell: str) -> int | None:
    return int(float(cell)) if cell.strip() else None


def _decimal(a: int) -> float:
    return 1 + a / 100 if a >= 100 else 1 + 100 / abs(a)


def _pair(
    base: dict[str, Any],
    market: str,
    sides: tuple[str, str],
    prices: tuple[int | None, int | None],
    lines: tuple[float | None, float | None],
) -> list[dict[str, Any]]:
    """Both sides of one market of one snapshot, with the no-vig probability of each."""
    a, b = prices
    if a is None or b is None:
        return []
    ia, ib = 1 / _decimal(a), 1 / _decimal(b)
    out = []
    for side, price, line, imp in ((sides[0], a, lines[0], ia), (sides[1], b, lines[1], ib)):
        out.append(
            {
                **base,
                "market": market,
                "side": side,
                "line": line,
                "price_american": price,
                "price_decimal": _decimal(price),
                "implied_prob": imp,
                "novig_prob": imp / (ia + ib),
            }
        )
    return out


def load_pinnacle(
    shifts: dict[str, timedelta] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Staged line dicts (team 1 = away) and final game dicts from the CSV."""
    shifts = shifts or {"pinnacle": timedelta(0)}
    lines: list[dict[str, Any]] = []
    games: dict[str, dict[str, Any]] = {}
    with DATA.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            gid = row["BaseballRefID"]
            commence = datetime.fromisoformat(row["EventDateTimeUTC"])
            entered = datetime.fromisoformat(row["EnteredDateTimeUTC"])
            head = {
                "game_id": gid,
                "commence_time": commence,
                "home_team": row["HomeTeam"],
                "away_team": row["AwayTeam"],
            }
            games[gid] = {
                **head,
                "status": "final",
                "home_score": int(float(row["FinalScoreHome"])),
                "away_score": int(float(row["FinalScoreAway"])),
                "event_time": commence + timedelta(hours=4),
                "ingested_at": commence + timedelta(hours=4),
                "source": "file",
                "source_event_id": f"{gid}-final",
            }
            for book, shift in shifts.items():
                when = entered + shift
                base = {
                    **head,
                    "book": book,
                    "event_time": when,
                    "ingested_at": when,
                    "source": "file",
                    "source_event_id": f"pinnacle-{i:06d}",
                }
                lines += _pair(
                    base,
                    "moneyline",
                    ("away", "home"),
                    (_american(row["MoneyUS1"]), _american(row["MoneyUS2"])),
                    (None, None),
                )
                if row["SpreadTeam1"].strip():
                    away_line = float(row["SpreadTeam1"])
                    lines += _pair(
                        base,
                        "spread",
                        ("away", "home"),
                        (_american(row["SpreadUS1"]), _american(row["SpreadUS2"])),
                        (away_line, -away_line),
                    )
                if row["TotalPoints"].strip():
                    pts = float(row["TotalPoints"])
                    lines += _pair(
                        base,
                        "total",
                        ("over", "under"),
                        (_american(row["TotalUSOver"]), _american(row["TotalUSUnder"])),
                        (pts, pts),
                    )
    lines.sort(key=lambda r: r["event_time"])
    return lines, list(games.values())


def _events(lines: list[dict[str, Any]], games: list[dict[str, Any]]) -> list[tuple[str, dict]]:
    ev = [("line", r) for r in lines] + [("game", g) for g in games]
    ev.sort(key=lambda e: e[1]["event_time"])
    return ev


def canon(outputs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """Order-free comparison form: every record rendered with sorted keys."""
    return sorted((topic, repr(sorted(rec.items()))) for topic, rec in outputs)


def _by_topic(outputs: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic, _ in outputs:
        counts[topic] = counts.get(topic, 0) + 1
    return counts


THREE_BOOKS = {
    "pinnacle": timedelta(0),
    "pinnacle_b": timedelta(seconds=90),
    "pinnacle_c": timedelta(minutes=4),
}


def test_loader_reads_the_real_history() -> None:
    lines, games = load_pinnacle()
    assert len(games) == 20
    first = lines[0]
    assert first["game_id"] == "PIT201604030"
    assert first["market"] == "moneyline"
    assert {r["price_american"] for r in lines[:2]} == {-110, 102}
    assert first["home_team"] == "Pittsburgh Pirates"


def test_engine_equals_reference_one_book() -> None:
    lines, games = load_pinnacle()
    expected = reference_features(lines, games=games)
    got = feed(FeatureEngine(FeatureSettings()), _events(lines, games))
    counts = _by_topic(got)
    assert counts["curated.line_velocity"] > 1000
    assert counts["curated.consensus"] > 1000
    assert counts["curated.feature_vectors"] == 2 * 20 * 3  # pre-game and final, 3 markets
    assert canon(got) == canon(expected)


def test_engine_equals_reference_three_books_with_steam() -> None:
    lines, games = load_pinnacle(THREE_BOOKS)
    expected = reference_features(lines, games=games)
    got = feed(FeatureEngine(FeatureSettings()), _events(lines, games))
    assert _by_topic(got).get("curated.steam_moves", 0) > 0
    assert canon(got) == canon(expected)


def test_engine_equals_reference_on_shuffled_arrival_within_lateness() -> None:
    settings = FeatureSettings()
    lateness = timedelta(minutes=settings.allowed_lateness_minutes)
    lines, games = load_pinnacle(THREE_BOOKS)
    events = _events(lines, games)
    rng = random.Random(2016)
    # arrival = event time + a delay below the lateness: never late, heavily reordered
    jitter = [rng.random() * lateness * 0.999 for _ in events]
    shuffled = [
        e
        for _, e in sorted(
            zip(jitter, events, strict=True), key=lambda p: p[1][1]["event_time"] + p[0]
        )
    ]
    assert shuffled != events
    engine = FeatureEngine(settings)
    got = feed(engine, shuffled)
    assert engine.late_count == 0
    assert canon(got) == canon(reference_features(lines, games=games, settings=settings))


def _resumed(cut: float, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run the engine up to ``cut`` of the events, store every game's state as JSON (what the
    worker's changelog holds), edit it, restore it into a new engine and run the rest: the
    outputs must equal an uninterrupted run's."""
    lines, games = load_pinnacle(THREE_BOOKS)
    events = _events(lines, games)
    uninterrupted = feed(FeatureEngine(), events)
    first = FeatureEngine()
    n = int(len(events) * cut)
    out = []
    for kind, rec in events[:n]:
        out += getattr(first, f"process_{kind}")(rec)
    second = FeatureEngine()
    for gid in first.game_ids():
        state = json.loads(json.dumps(first.snapshot(gid)))
        if edit is not None:
            edit(state)
        second.restore(gid, state)
    out += feed(second, events[n:])
    assert canon(out) == canon(uninterrupted)


def test_snapshot_restore_mid_stream_matches_uninterrupted_run() -> None:
    _resumed(0.5)


def test_state_written_before_median_histories_were_kept_restores_the_same() -> None:
    """A changelog entry from before the engine kept each series' cross-book median history
    (``mhist``) is rebuilt from the per-book histories: the same outputs as an unbroken run."""
    dropped: list[str] = []
    _resumed(1 / 3, lambda state: dropped.extend(state.pop("mhist")))
    assert dropped  # the old format really was exercised


def test_velocity_on_real_moneyline_values() -> None:
    """Spot check against hand-computed values of the first game's first move."""
    lines, _ = load_pinnacle()
    out = feed(FeatureEngine(), [("line", r) for r in lines if r["game_id"] == "PIT201604030"])
    vel = [
        r
        for t, r in out
        if t == "curated.line_velocity"
        and r["book"] == "pinnacle"
        and r["market"] == "moneyline"
        and r["window_minutes"] == 5
    ]
    # first quote: home +102 = 2 cents, nothing before it
    assert (vel[0]["value"], vel[0]["value_before"], vel[0]["change"]) == (2.0, None, 0.0)
    home = [r for r in lines if r["game_id"] == "PIT201604030" and r["market"] == "moneyline"]
    home = [r for r in home if r["side"] == "home"]
    prices = []
    for r in home:
        if not prices or prices[-1][1] != r["price_american"]:
            prices.append((r["event_time"], r["price_american"]))
    second_t, second_price = prices[1]
    rec = next(r for r in vel if r["event_time"] == second_t)
    c = second_price - 100 if second_price >= 100 else second_price + 100
    assert rec["value"] == c
    gap = second_t - prices[0][0]
    if gap >= timedelta(minutes=5):
        assert rec["value_before"] == 2.0
        assert rec["velocity"] == pytest.approx((c - 2.0) / 5)
