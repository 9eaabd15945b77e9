"""``oddsflow replay --group features`` recomputes the curated zone, identically.

The features worker commits its state and its input offsets in one transaction, and skips input
its state already holds; a replay must therefore reset both. After it, the same worker group
re-emits exactly the records of the first run (the sink's natural keys absorb the repeats).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.admin import admin_client
from core.settings import Settings
from oddsflow.ops.replay import apply_plan, plan_replay, wait_empty
from streams.features.worker import OUTPUTS, state_topic
from tests.integration.test_features_stream import (
    _reference,
    _run_worker,
    _staged_pinnacle,
    canon,
)


async def test_replaying_the_features_group_re_emits_the_same_records(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    staged = _staged_pinnacle()[:4000]  # the first games of the sample: enough, and quick
    want = Counter(t for t, _ in _reference(staged))
    assert want["curated.line_velocity"] > 500
    first = await _run_worker(s, staged, want, tmp_path / "first")
    assert {t: len(first[t]) for t in want} == dict(want)
    assert state_topic(s) in admin_client(s).list_topics(timeout=10).topics

    group = f"{s.kafka.topic_prefix}oddsflow-features"
    # a stopped static member leaves the group when its session times out (10 s)
    assert await wait_empty(s, group, 40) == []
    plan = plan_replay(s, "staging", group="features")
    assert plan.role == "features" and plan.records == len(staged)
    await apply_plan(s, plan)
    assert state_topic(s) not in admin_client(s).list_topics(timeout=10).topics

    # the same input is not published again: the worker re-reads it from the reset offsets
    doubled = Counter({t: 2 * n for t, n in want.items()})
    again = await _run_worker(s, [], doubled, tmp_path / "again")
    for topic in OUTPUTS:
        records = again[topic]
        assert len(records) == 2 * want[topic], topic
        assert canon(records) == canon(first[topic] + first[topic]), topic
