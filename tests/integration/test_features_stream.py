"""The feature worker over Kafka: real Pinnacle history in, reference values out, replayable.

Staging runs in process (the real parsers; ``bench/staged_input.py``) and its records are
published to the staging topics, so one worker process (``oddsflow worker features``) is all
that runs. The worker's idle flush (``ODDSFLOW_FEATURES_IDLE_FLUSH_SECONDS``) releases each
game's last ``allowed_lateness`` minutes once the input is consumed.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.staged_input import Staged, TopicReader, decoded, publish_staged, stage
from core.settings import Settings
from producers.history import pinnacle_records
from streams.features.worker import IDLE_FLUSH_ENV, OUTPUTS
from tests.fixtures_path import PINNACLE
from tests.helpers import curated_table, wait_for, workers
from tests.support.features_reference import reference_features

VELOCITY = "curated.line_velocity"
CONSENSUS = "curated.consensus"
VECTORS = "curated.feature_vectors"
COMPARED = (VELOCITY, CONSENSUS, VECTORS)


def _staged_pinnacle() -> list[Staged]:
    envelopes = [
        ("file", r.event_id, r.payload, r.event_time, r.content_type, r.request)
        for r in pinnacle_records(PINNACLE)
    ]
    staged, _dead = stage(envelopes)
    return staged


def _reference(staged: list[Staged]) -> list[tuple[str, dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {"line": [], "split": [], "game": []}
    for kind, rec in decoded(staged):
        by_kind[kind].append(rec)
    return reference_features(by_kind["line"], by_kind["split"], by_kind["game"])


def fresh_namespace(s: Settings) -> Settings:
    """The same settings under a new topic prefix (new topics, group and state), topics created."""
    from core.admin import create_topics

    data = s.model_dump()
    data["kafka"]["topic_prefix"] = "r" + uuid.uuid4().hex[:8] + "."
    fresh = Settings(**data)
    create_topics(fresh)
    return fresh


def canon(records: list[dict[str, Any]]) -> list[str]:
    """Order-free comparison form (a record's partition and arrival order do not matter)."""
    return sorted(repr(sorted(r.items())) for r in records)


async def _run_worker(settings: Settings, staged: list[Staged], expected: Counter[str], logs: Path):
    os.environ[IDLE_FLUSH_ENV] = "3"
    try:
        assert publish_staged(settings, staged) == len(staged)
        reader = TopicReader(settings, OUTPUTS)
        try:
            with workers(settings, ("features",), logs) as procs:

                async def counts() -> dict[str, int]:
                    reader.poll(0.5)
                    assert procs["features"].poll() is None, "the features worker died"
                    return {t: reader.count(t) for t in OUTPUTS}

                await wait_for(
                    counts,
                    lambda c: all(c[t] >= n for t, n in expected.items()),
                    timeout=90,
                    what="the curated records",
                )
            reader.poll(1.0)  # anything beyond the expected count would show up here
            return reader.records
        finally:
            reader.close()
    finally:
        os.environ.pop(IDLE_FLUSH_ENV, None)


async def test_pinnacle_velocity_through_kafka_equals_reference_and_replays_identically(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    staged = _staged_pinnacle()
    expected = _reference(staged)
    # Staged Pinnacle game records carry the final score on every pre-game row: the vectors
    # (as of first pitch, 21 games x 3 markets, pre-game and with targets) wait for first pitch
    # or the end of the input, never freeze at the first row.
    want = Counter(t for t, _ in expected if t in COMPARED)
    assert want[VELOCITY] == 8196 and want[CONSENSUS] == 2756 and want[VECTORS] == 126

    first = await _run_worker(pipeline_settings, staged, want, tmp_path / "first")
    for topic in COMPARED:  # the tables: a pre-game vector is replaced by its final one
        rows = curated_table(topic, first[topic])
        reference = curated_table(topic, [r for t, r in expected if t == topic])
        assert len(rows) == len(reference) == (63 if topic == VECTORS else want[topic]), topic
        assert canon(rows) == canon(reference), topic

    # Same input, new topics, new consumer group (the app id follows the prefix), new state
    again = await _run_worker(fresh_namespace(pipeline_settings), staged, want, tmp_path / "again")
    for topic in OUTPUTS:
        assert canon(curated_table(topic, again[topic])) == canon(
            curated_table(topic, first[topic])
        ), topic
