"""Live mode: results at once, corrections and withdrawals after late records.

The table a sink builds from the live engine's output (last record per key, withdrawn keys
deleted) must equal the batch reference over the same records in event-time order, whatever
order they arrived in within the allowed lateness.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from core.settings import FeatureSettings
from streams.features.definitions import MINUTE_US
from streams.features.engine import FeatureEngine
from streams.features.live_engine import LiveEngine, result_key
from tests.support.features_reference import reference_features
from tests.unit.test_features_pinnacle import THREE_BOOKS, _events, canon, load_pinnacle

Output = tuple[str, dict[str, Any]]


def table(outputs: list[Output]) -> list[Output]:
    """What a sink keeps: the last record per key, withdrawn keys removed."""
    rows: dict[tuple[Any, ...], Output] = {}
    for topic, rec in outputs:
        key = result_key(topic, rec)
        if rec.get("retracted"):
            rows.pop(key, None)
        else:
            rows[key] = (topic, {k: v for k, v in rec.items() if k != "retracted"})
    return list(rows.values())


def live(
    settings: FeatureSettings, batches: list[list[tuple[str, dict[str, Any]]]]
) -> tuple[list[Output], LiveEngine]:
    engine = LiveEngine(FeatureEngine(settings), settings.allowed_lateness_minutes * MINUTE_US)
    out: list[Output] = []
    for batch in batches:
        out += engine.apply(batch)
    for gid in engine.engine.game_ids():
        out += engine.engine.end(gid)
    return out, engine


def _batches(events: list[Any], size: int) -> list[list[Any]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def test_in_order_input_needs_no_correction_and_equals_the_reference() -> None:
    settings = FeatureSettings()
    lines, games = load_pinnacle(THREE_BOOKS)
    events = _events(lines, games)
    # live arrival: each observation (one game, one instant: a staged raw record) is a batch
    batches: list[list[tuple[str, dict[str, Any]]]] = []
    for kind, rec in events:
        head = batches[-1][-1][1] if batches else None
        same = head is not None and (head["game_id"], head["event_time"]) == (
            rec["game_id"], rec["event_time"]
        )  # fmt: skip
        if same:
            batches[-1].append((kind, rec))
        else:
            batches.append([(kind, rec)])
    out, engine = live(settings, batches)
    expected = reference_features(lines, games=games, settings=settings)
    assert engine.replays == 0 and engine.retracted == 0
    assert canon(table(out)) == canon(table(expected))
    assert len(out) == len(expected)  # nothing re-sent: every result once, at once


def test_any_batch_size_gives_the_same_table() -> None:
    settings = FeatureSettings()
    lines, games = load_pinnacle(THREE_BOOKS)
    events = _events(lines, games)
    expected = canon(table(reference_features(lines, games=games, settings=settings)))
    for size in (7, 500, 100_000):
        out, _ = live(settings, _batches(events, size))
        assert canon(table(out)) == expected, size


def test_shuffled_arrival_within_lateness_is_corrected_to_the_reference() -> None:
    settings = FeatureSettings()
    lateness = timedelta(minutes=settings.allowed_lateness_minutes)
    lines, games = load_pinnacle(THREE_BOOKS)
    events = _events(lines, games)
    rng = random.Random(2016)
    # one record in ten arrives up to the whole lateness later than its event time
    jitter = [
        rng.random() * lateness * 0.999 if rng.random() < 0.1 else timedelta(0) for _ in events
    ]
    shuffled = [
        e
        for _, e in sorted(
            zip(jitter, events, strict=True), key=lambda p: p[1][1]["event_time"] + p[0]
        )
    ]
    assert shuffled != events
    out, engine = live(settings, _batches(shuffled, 5))
    assert engine.late == []
    assert engine.replays > 0 and engine.corrected > 0
    expected = reference_features(lines, games=games, settings=settings)
    assert canon(table(out)) == canon(table(expected))


def test_a_late_record_that_undoes_a_steam_move_withdraws_it() -> None:
    settings = FeatureSettings()
    t0 = 1_700_000_000_000_000
    base = {
        "game_id": "G", "commence_time": None, "home_team": "H", "away_team": "A",
        "market": "moneyline", "line": None, "novig_prob": None, "source": "s",
    }  # fmt: skip

    def line(book: str, minute: float, side: str, price: int) -> tuple[str, dict[str, Any]]:
        from streams.features.definitions import from_us

        at = from_us(t0 + int(minute * MINUTE_US))
        dec = 1 + price / 100 if price > 0 else 1 + 100 / -price
        rec = {**base, "book": book, "side": side, "price_american": price,
               "price_decimal": dec, "event_time": at, "ingested_at": at,
               "source_event_id": f"{book}-{minute}-{side}"}  # fmt: skip
        return "line", rec

    books = ("a", "b", "c")
    opening = [line(b, 0, s, -110) for b in books for s in ("home", "away")]
    # three books move home 20 cents at minute 3: steam
    moves = [line(b, 3, "home", -130) for b in books]
    out, engine = live(settings, [opening, moves])
    steam = [r for t, r in out if t == "curated.steam_moves"]
    assert len(steam) == 1 and not steam[0].get("retracted")
    # a late record shows book c already at -130 at minute -3: its opening -110 was a move
    # away, and at minute 3 it only came back, 0 cents net over the window: two books are not
    # steam, so the move is withdrawn
    more = engine.apply([line("c", -3, "home", -130)])
    assert engine.replays == 1
    retractions = [r for t, r in more if t == "curated.steam_moves" and r["retracted"]]
    assert [r["move_id"] for r in retractions] == [steam[0]["move_id"]]
    assert not [r for t, r in table(out + more) if t == "curated.steam_moves"]
    velocity = table(out + more)
    c_moves = {
        r["event_time"] for t, r in velocity if t == "curated.line_velocity" and r["book"] == "c"
    }
    assert line("c", 0, "home", -110)[1]["event_time"] in c_moves  # c's move away at 0 is new


def test_beyond_the_lateness_is_late_and_changes_nothing() -> None:
    settings = FeatureSettings()
    lines, games = load_pinnacle()
    events = _events(lines, games)[:400]
    out, engine = live(settings, [events])
    gid, rec = events[-1][1]["game_id"], dict(events[-1][1])
    rec["event_time"] = rec["event_time"] - timedelta(hours=3)
    before = len(out)
    assert engine.apply([("line", rec)]) == []
    assert len(out) == before
    assert [x["game_id"] for x in engine.late] == [gid]
