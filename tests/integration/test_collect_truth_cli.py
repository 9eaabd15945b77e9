"""``oddsflow collect --source simulator --truth FILE``: labelled events in, labels out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Consumer

from core.kafka_config import consumer_config
from core.offsets import topic_watermarks
from core.settings import Settings
from core.topics import topic_name
from tests.conftest import settings_env


def _count(settings: Settings, logical: str) -> int:
    topic = topic_name(settings, logical)
    c = Consumer(consumer_config(settings, "count"))
    try:
        return sum(high for _low, high in topic_watermarks(c, topic).values())
    finally:
        c.close()


def test_truth_run_publishes_odds_and_splits_and_writes_labels(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    labels = tmp_path / "truth.json"
    out = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "collect", "--source", "simulator", "--truth",
         str(labels), "--games", "4", "--books", "4", "--ticks", "60", "--seed", "3"],
        env=settings_env(pipeline_settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(labels.read_text())
    assert doc["seed"] == 3
    assert sorted(label["kind"] for label in doc["labels"]) == ["rlm", "sharp", "steam"]
    assert _count(pipeline_settings, "raw.odds.simulator") == 4 * 4 * 60
    assert _count(pipeline_settings, "raw.odds.sbd") == 60 // 10
    assert "simulator: 960 raw records acknowledged" in out.stdout
    assert "3 labelled events written" in out.stdout
