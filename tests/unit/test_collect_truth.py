"""Simulator ground truth: the injected events are really in the payloads, deterministically."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

from producers.simulator_truth import TruthSimulator
from streams.staging.parsers import parse


def _home_ml(sim: TruthSimulator) -> dict[tuple[str, str, str], int]:
    """(game id, book, event time) -> home moneyline, from the published odds payloads."""
    out = {}
    for source, eid, payload, at in sim.envelopes():
        if source != "simulator":
            continue
        env = {"event_id": eid, "source": source, "fetched_at": at, "payload": payload}
        for ln in parse(env).lines:
            if ln["market"] == "moneyline" and ln["side"] == "home":
                out[(ln["game_id"], ln["book"], ln["event_time"].isoformat())] = ln[
                    "price_american"
                ]
    return out


def test_labels_match_the_payloads_and_are_deterministic(tmp_path: Path) -> None:
    sim = TruthSimulator(seed=5, games=4, books=5, ticks=60)
    assert [e[:2] for e in sim.envelopes()] == [
        e[:2] for e in TruthSimulator(5, 4, 5, 60).envelopes()
    ]
    kinds = {lb["kind"]: lb for lb in sim.labels}
    assert set(kinds) == {"steam", "rlm", "sharp"}
    ml = _home_ml(TruthSimulator(seed=5, games=4, books=5, ticks=60))

    steam = kinds["steam"]
    assert len(steam["books"]) >= 3
    span = datetime.fromisoformat(steam["end"]) - datetime.fromisoformat(steam["start"])
    assert span.total_seconds() <= 300
    sign = -1 if steam["direction"] == "toward_home" else 1
    moved = 0
    for book in steam["books"]:
        series = sorted(
            (t, p) for (g, b, t), p in ml.items() if g == steam["game_id"] and b == book
        )
        steps = [(t, p1 - p0) for (_, p0), (t, p1) in itertools.pairwise(series)]
        hits = [t for t, d in steps if steam["start"] <= t <= steam["end"] and sign * d >= 10]
        moved += bool(hits)
    assert moved >= 3, "at least three books move the same way by >= 10 cents in the window"

    splits = {}
    for source, eid, payload, at in sim.split_envelopes():
        assert source == "sbd"
        env = {"event_id": eid, "source": source, "fetched_at": at, "payload": payload}
        parsed = parse(env)
        assert not parsed.rejects
        for s in parsed.splits:
            splits[(s["game_id"], s["side"])] = s
    rlm, sharp = kinds["rlm"], kinds["sharp"]
    assert splits[(rlm["game_id"], "home")]["bets_pct"] == 78.0
    s = splits[(sharp["game_id"], "away")]
    assert (s["bets_pct"], s["money_pct"]) == (30.0, 55.0)
    others = [v for (g, _), v in splits.items() if g not in {lb["game_id"] for lb in sim.labels}]
    assert others and all(abs(v["money_pct"] - v["bets_pct"]) <= 5.01 for v in others)

    out = tmp_path / "truth.json"
    sim.write_labels(out)
    doc = json.loads(out.read_text())
    assert doc["seed"] == 5 and doc["labels"] == sim.labels
    assert datetime.fromisoformat(doc["start"]) == datetime(2026, 4, 1, 17, tzinfo=UTC)
