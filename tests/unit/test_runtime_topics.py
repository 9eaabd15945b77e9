"""A worker's own topics (repartition, changelogs) are in the metadata before it subscribes.

A subscribed topic the group join does not find in the metadata stays out of the assignment
until librdkafka's periodic refresh (5 minutes): the chaos suite's reference staging worker
joined 330 ms after creating its repartition topic on a busy broker and de-duplicated nothing.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.settings import Settings
from streams.runtime import changelog


@dataclass
class _Topic:
    partitions: dict[int, object]
    error: object = None


@dataclass
class _Metadata:
    topics: dict[str, _Topic] = field(default_factory=dict)


class _SlowBroker:
    """Creates topics at once but lists a new one only after ``lag`` more metadata requests."""

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.created: dict[str, int] = {}
        self.asked_after_create = 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        if not self.created:
            return _Metadata()
        self.asked_after_create += 1
        if self.asked_after_create <= self.lag:
            return _Metadata({topic: _Topic({}, error="UNKNOWN_TOPIC_OR_PART")} if topic else {})
        return _Metadata({t: _Topic(dict.fromkeys(range(n))) for t, n in self.created.items()})

    def create_topics(self, new: list[Any], operation_timeout: float = 0) -> dict[str, Future]:
        done: Future = Future()
        done.set_result(None)
        for t in new:
            self.created[t.topic] = t.num_partitions
        return {t.topic: done for t in new}


def test_a_created_topic_is_listed_before_ensure_topic_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = _SlowBroker(lag=3)
    monkeypatch.setattr(changelog, "admin_client", lambda _settings: broker)
    changelog.ensure_topic(Settings(), "g-repartition", 2, compact=False)
    assert broker.created == {"g-repartition": 2}
    assert broker.asked_after_create == 4  # returned at the first answer that lists it


def test_a_topic_that_never_shows_up_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _SlowBroker(lag=10**9)
    monkeypatch.setattr(changelog, "admin_client", lambda _settings: broker)
    monkeypatch.setattr(changelog, "VISIBLE_TIMEOUT", 0.3)
    with pytest.raises(TimeoutError, match="not in the metadata"):
        changelog.ensure_topic(Settings(), "g-repartition", 2, compact=False)
