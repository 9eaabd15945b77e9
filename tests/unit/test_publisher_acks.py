"""A collector never reports success for a record the broker did not acknowledge.

No broker here: the Publisher points at a closed port with a short message timeout, so every
record's delivery report is a failure, and neither ``publish`` nor ``publish_all`` may count it
as acknowledged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from core.settings import load_settings
from producers.publisher import Publisher
from producers.simulator import Simulator

START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)


@pytest.fixture
def unreachable() -> Publisher:
    s = load_settings()
    s = s.model_copy(
        update={"kafka": s.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})}
    )
    return Publisher(s, "simulator", **{"message.timeout.ms": 300, "log_level": 0})


def test_publish_counts_a_timed_out_record_as_failed(
    unreachable: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, "oddsflow.publisher")
    unreachable.publish("e1", b"{}", START)
    stats = unreachable.close(timeout=10)
    assert (stats.sent, stats.acked, stats.failed) == (1, 0, 1)


def test_publish_all_counts_only_delivery_reports(
    unreachable: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, "oddsflow.publisher")
    sim = Simulator(seed=1, games=2, books=3, ticks=5, start=START)
    sent = unreachable.publish_all(sim.records(unreachable.layout()))
    stats = unreachable.close(timeout=10)
    assert sent == stats.sent == stats.failed == 30 and stats.acked == 0
    assert not unreachable.connect(timeout=0.2)
