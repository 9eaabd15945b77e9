"""Feature quality against the simulator's ground truth (``producers/simulator_truth.py``).

A detected steam move is right when it names a labelled game and market, moves the labelled way
and is detected between the label's start and its end plus one steam window (detection needs
the books' moves to have happened). Reverse line movement and sharp action are matched the same
way, per (game, market, side): RLM on the side the line moves toward, sharp action on the
labelled side. Precision = right detections / detections; recall = labels found / labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from core.settings import FeatureSettings

Output = tuple[str, dict[str, Any]]


def _span(label: dict[str, Any], slack: timedelta) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(label["start"]), datetime.fromisoformat(label["end"]) + slack


def _score(labels: list[dict[str, Any]], found: list[dict[str, Any]], match: Any) -> dict[str, Any]:
    hit_labels = {i for i, lb in enumerate(labels) if any(match(lb, f) for f in found)}
    right = sum(1 for f in found if any(match(lb, f) for lb in labels))
    return {
        "labels": len(labels),
        "detected": len(found),
        "true_positives": right,
        "precision": right / len(found) if found else (1.0 if not labels else 0.0),
        "recall": len(hit_labels) / len(labels) if labels else 1.0,
    }


def score_against_truth(
    labels: Iterable[dict[str, Any]],
    outputs: Iterable[Output],
    settings: FeatureSettings | None = None,
) -> dict[str, dict[str, Any]]:
    """Precision and recall of steam moves, RLM and sharp action against the injected labels.

    ``labels``: the ``labels`` list of the truth JSON; ``outputs``: (catalog topic, record)
    pairs as the feature worker published them (steam moves and sharp signals are used).
    """
    s = settings or FeatureSettings()
    labels = list(labels)
    steam_slack = timedelta(minutes=s.steam_window_minutes)
    rlm_slack = timedelta(minutes=s.rlm_lookback_minutes)
    steams, rlms, sharps = [], [], []
    for topic, rec in outputs:
        if topic == "curated.steam_moves":
            steams.append(rec)
        elif topic == "curated.sharp_signals":
            (rlms if rec["signal_type"] == "reverse_line_movement" else sharps).append(rec)

    def steam_match(lb: dict[str, Any], m: dict[str, Any]) -> bool:
        lo, hi = _span(lb, steam_slack)
        return (
            (lb["game_id"], lb["market"]) == (m["game_id"], m["market"])
            and lb["direction"] == f"toward_{m['direction']}"
            and lo <= m["detected_at"] <= hi
        )

    def rlm_match(lb: dict[str, Any], m: dict[str, Any]) -> bool:
        lo, hi = _span(lb, rlm_slack)
        return (
            (lb["game_id"], lb["market"]) == (m["game_id"], m["market"])
            and lb["direction"] == f"toward_{m['side']}"
            and lo <= m["event_time"] <= hi
        )

    def sharp_match(lb: dict[str, Any], m: dict[str, Any]) -> bool:
        lo, hi = _span(lb, timedelta(0))
        return (lb["game_id"], lb["market"], lb["side"]) == (
            m["game_id"],
            m["market"],
            m["side"],
        ) and lo <= m["event_time"] <= hi

    by_kind = {k: [lb for lb in labels if lb["kind"] == k] for k in ("steam", "rlm", "sharp")}
    return {
        "steam": _score(by_kind["steam"], steams, steam_match),
        "rlm": _score(by_kind["rlm"], rlms, rlm_match),
        "sharp": _score(by_kind["sharp"], sharps, sharp_match),
    }


def score_truth_run(settings: FeatureSettings | None = None, seed: int = 7) -> dict[str, Any]:
    """Simulate the labelled market (20 steam moves, 5 RLM, 4 sharp games in 30), stage it and
    run the feature code over it in process; returns the precision/recall per signal."""
    from bench.staged_input import decoded, stage
    from producers.simulator_truth import TruthSimulator
    from streams.features.partitioned import PartitionFeatures

    s = settings or FeatureSettings()
    sim = TruthSimulator(seed=seed, games=30, books=5, ticks=120, steam=20, rlm=5, sharp=4)
    envelopes = [(src, eid, p, at, "application/json", {}) for src, eid, p, at in sim.envelopes()]
    staged, _dead = stage(envelopes, dedupe=True)
    pf = PartitionFeatures(s, 0)
    outputs = pf.feed(decoded(staged))
    return score_against_truth(sim.labels, outputs, s)
