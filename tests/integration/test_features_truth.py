"""Feature quality on the simulator's injected events, through Kafka and the feature worker.

The simulator's odds and SBD-shaped splits are staged in process (real parsers, de-duplicated
like the staging worker does) and published; one feature worker computes the curated records;
``score_against_truth`` compares them with the injected labels. 30 games: 20 steam moves (so one
miss or one false alarm already costs 0.05), 5 reverse line movements, 4 sharp-money games and
1 quiet game; the background cannot meet any definition (``producers/simulator_truth.py``).
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from bench.staged_input import Staged, decoded, stage
from bench.truth_score import score_against_truth
from core.settings import FeatureSettings, Settings
from producers.simulator_truth import TruthSimulator
from streams.features.partitioned import PartitionFeatures
from streams.features.worker import OUTPUTS
from tests.helpers import curated_table
from tests.integration.test_features_stream import _run_worker, canon

Output = tuple[str, dict[str, Any]]


@cache
def _simulated() -> tuple[TruthSimulator, list[Staged]]:
    sim = TruthSimulator(seed=7, games=30, books=5, ticks=120, steam=20, rlm=5, sharp=4)
    envelopes = [(src, eid, p, at, "application/json", {}) for src, eid, p, at in sim.envelopes()]
    staged, dead = stage(envelopes, dedupe=True)
    assert dead == 0
    return sim, staged


def _in_process(settings: FeatureSettings) -> list[Output]:
    _, staged = _simulated()
    pf = PartitionFeatures(settings, 0)
    return pf.feed(decoded(staged))


def _assert_meets_the_target(score: dict[str, dict[str, Any]]) -> None:
    steam = score["steam"]
    assert steam["labels"] == 20
    assert steam["precision"] >= 0.95 and steam["recall"] >= 0.95, steam
    assert score["rlm"] == {
        "labels": 5, "detected": 5, "true_positives": 5, "precision": 1.0, "recall": 1.0,
    }  # fmt: skip
    sharp = score["sharp"]
    assert (sharp["labels"], sharp["precision"], sharp["recall"]) == (4, 1.0, 1.0), sharp
    # a signal at each of the 12 splits payloads of each sharp game
    assert sharp["detected"] == sharp["true_positives"] == 48


async def test_injected_events_through_the_feature_worker(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    sim, staged = _simulated()
    # the same code in process: what the worker must publish, record for record
    local = _in_process(pipeline_settings.features)
    want = Counter(t for t, _ in local)

    got = await _run_worker(pipeline_settings, staged, want, tmp_path / "truth")
    tables = {topic: curated_table(topic, got[topic]) for topic in OUTPUTS}
    for topic in OUTPUTS:  # the tables the records make (corrections applied)
        local_rows = curated_table(topic, [r for t, r in local if t == topic])
        assert canon(tables[topic]) == canon(local_rows), topic

    score = score_against_truth(sim.labels, [(t, r) for t in OUTPUTS for r in tables[t]])
    print("\nfeature quality on the injected events:", score)
    _assert_meets_the_target(score)


def test_each_label_is_found_once_with_its_details_and_nothing_else() -> None:
    sim, _ = _simulated()
    out = _in_process(FeatureSettings())
    _assert_meets_the_target(score_against_truth(sim.labels, out))
    labelled = {lb["game_id"] for lb in sim.labels}
    steams = [r for t, r in out if t == "curated.steam_moves"]
    signals = [r for t, r in out if t == "curated.sharp_signals"]
    assert {r["game_id"] for r in steams + signals} <= labelled, "nothing on the quiet game"

    for lb in sim.labels:
        mine = [r for r in steams if r["game_id"] == lb["game_id"]]
        if lb["kind"] != "steam":
            assert mine == [], lb  # a 4-cent grind or no move at all is not steam
            continue
        assert len(mine) == 1, lb  # announced once, not at every later tick
        m = mine[0]
        assert f"toward_{m['direction']}" == lb["direction"]
        assert set(m["books"]) == set(lb["books"]) and m["unit"] == "cents"
        assert m["detected_at"].isoformat() == lb["end"]  # when the third book moved
        assert m["magnitude"] >= 10

    rlm = [r for r in signals if r["signal_type"] == "reverse_line_movement"]
    for lb in (lb for lb in sim.labels if lb["kind"] == "rlm"):
        mine = [r for r in rlm if r["game_id"] == lb["game_id"]]
        assert len(mine) == 1, mine  # one signal per injected move, not one per step
        r = mine[0]
        assert f"toward_{r['side']}" == lb["direction"] and r["tier"] == "75"
        assert r["tickets_pct"] == 100 - lb["tickets_pct"]
        assert lb["start"] < r["event_time"].isoformat() <= lb["end"]
        assert abs(r["line_move"]) >= 10 and r["unit"] == "cents"
    assert {r["game_id"] for r in rlm} == {
        lb["game_id"] for lb in sim.labels if lb["kind"] == "rlm"
    }

    sharp = [r for r in signals if r["signal_type"] == "sharp_action"]
    want = {(lb["game_id"], lb["side"]) for lb in sim.labels if lb["kind"] == "sharp"}
    assert {(r["game_id"], r["side"]) for r in sharp} == want
    assert {(r["tier"], r["tickets_pct"], r["money_pct"]) for r in sharp} == {
        ("premium", 45.0, 70.0)
    }
