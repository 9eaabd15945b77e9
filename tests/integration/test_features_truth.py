"""Feature quality on the simulator's injected events, through Kafka and the feature worker.

The simulator's odds and SBD-shaped splits are staged in process (real parsers, de-duplicated
like the staging worker does) and published; one feature worker computes the curated records;
``score_against_truth`` compares them with the injected labels.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from oddsflow.settings import FeatureSettings, Settings
from producers.simulator_truth import TruthSimulator
from streams.features.agent import OUTPUTS
from streams.features.kafkaio import decoded, stage
from streams.features.partitioned import PartitionFeatures
from streams.features.quality import score_against_truth
from tests.integration.test_features_stream import _run_worker, canon


def _simulated() -> tuple[TruthSimulator, list]:
    sim = TruthSimulator(seed=7, games=6, books=5, ticks=120)
    envelopes = [(src, eid, p, at, "application/json", {}) for src, eid, p, at in sim.envelopes()]
    staged, dead = stage(envelopes, dedupe=True)
    assert dead == 0
    return sim, staged


async def test_injected_events_through_the_feature_worker(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    sim, staged = _simulated()
    # the same code in process: what the worker must publish, record for record
    pf = PartitionFeatures(pipeline_settings.features, 0)
    local = [o for kind, rec in decoded(staged) for o in pf.process(kind, rec)] + pf.flush_all()
    want = Counter(t for t, _ in local)

    got = await _run_worker(pipeline_settings, staged, want, tmp_path / "truth")
    for topic in OUTPUTS:
        assert canon(got[topic]) == canon([r for t, r in local if t == topic]), topic

    score = score_against_truth(sim.labels, [(t, r) for t in OUTPUTS for r in got[t]])
    assert score["sharp"] == {
        "labels": 1, "detected": 12, "true_positives": 12, "precision": 1.0, "recall": 1.0,
    }  # fmt: skip
    assert score["steam"]["recall"] == 1.0
    # The labelled RLM game is signalled (away, tier 75: 78 % of tickets on home), but on the
    # simulator's 1-3 cent drift at 17:05, 17:10:30 and 17:17:30, not at the injected 15-cent
    # jump of 17:55:30: the condition still held, so it is not re-raised (README, RLM).
    rlm = [r for r in got["curated.sharp_signals"] if r["signal_type"] == "reverse_line_movement"]
    label = next(lb for lb in sim.labels if lb["kind"] == "rlm")
    mine = [r for r in rlm if r["game_id"] == label["game_id"]]
    assert {(r["side"], r["tier"], r["tickets_pct"]) for r in mine} == {("away", "75", 22.0)}


@pytest.mark.xfail(
    strict=True,
    reason="the simulator's background drift makes real steam (3+ books >= 10 c within 5 min) "
    "and 1-cent RLM on unlabelled games: 8 steam moves for 1 label, 12 RLM signals for 1 label",
)
def test_steam_and_rlm_precision_meet_the_target() -> None:
    sim, staged = _simulated()
    pf = PartitionFeatures(FeatureSettings(), 0)
    out = [o for kind, rec in decoded(staged) for o in pf.process(kind, rec)] + pf.flush_all()
    score = score_against_truth(sim.labels, out)
    assert score["steam"]["precision"] >= 0.95 and score["steam"]["recall"] >= 0.95
    assert score["rlm"]["precision"] >= 0.95 and score["rlm"]["recall"] >= 0.95
