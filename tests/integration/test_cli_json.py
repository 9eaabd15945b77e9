"""``--json`` of every command that lists or reports, against the real broker and database: one
JSON document each, and every time in it in one form, ``2026-12-02T02:19:48Z``.

A dead letter is written onto ``dlq.staging`` and the simulator publishes a few records, so the
listings have times to show (a dead letter's failure time, a lag sample's observation time).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import dlq_topic, topic_name
from producers.collect import publish_simulation
from producers.simulator import Simulator
from schemas.codec import default_codec
from tests.conftest import settings_env

LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
ONE_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

COMMANDS = [
    ("topics", "list"),
    ("services", "status"),
    ("lag",),
    ("dlq", "list", "-n", "2"),
    ("dlq", "replay", "--dry-run"),
    ("pipeline", "status", "--interval", "0.5"),
    ("pipeline", "health"),
    ("pipeline", "quality"),
    ("pipeline", "run", "--zone", "raw", "--quiet", "2"),
    ("data", "status"),
    ("replay", "--zone", "raw", "--dry-run"),
    ("topology",),
    ("schemas", "list"),
]


def _times(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [t for v in doc.values() for t in _times(v)]
    if isinstance(doc, list):
        return [t for v in doc for t in _times(v)]
    return [doc] if isinstance(doc, str) and LOOKS_LIKE_TIME.match(doc) else []


@pytest.fixture
def reported(pipeline_settings: Settings) -> Settings:
    s = pipeline_settings
    publish_simulation(s, Simulator(seed=5, games=1, books=2, ticks=3), progress=False)
    dead = default_codec().encoder("oddsflow.operational.DeadLetter")(
        {
            "stage": "staging", "origin_topic": topic_name(s, "raw.odds.simulator"),
            "origin_partition": 0, "origin_offset": 0, "key": b"k", "original": b"{}",
            "error_class": "wrong_shape", "reason": "payload holds no odds",
            "failed_at": datetime(2026, 12, 2, 2, 19, 48, 123456, tzinfo=UTC),
        }
    )  # fmt: skip
    producer = Producer(producer_config(s))
    producer.produce(topic_name(s, dlq_topic("staging")), value=dead, key=b"k")
    assert producer.flush(10) == 0
    return s


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_json_is_one_document_with_one_time_form(reported: Settings, argv: tuple[str, ...]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", *argv, "--json"], env=settings_env(reported),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in res.stderr
    assert res.returncode in (0, 1), res.stderr  # health and quality judge: 1 is a verdict
    doc = json.loads(res.stdout)  # one document: nothing else on stdout
    times = _times(doc)
    assert all(ONE_FORM.match(t) for t in times), times
    if argv[:2] == ("dlq", "list"):
        assert "2026-12-02T02:19:48Z" in times  # the dead letter's own time, to the second
    if argv[:2] == ("pipeline", "run"):  # what each table gained, as the text report says it
        assert doc["rows_added"][f"{reported.pipeline.zones.raw}.odds_envelopes"] == 6, doc
        assert doc["zone"] == "raw" and doc["started_at"] <= doc["finished_at"]
        assert "pipeline run: starting sink" in res.stderr  # what it does: on stderr
