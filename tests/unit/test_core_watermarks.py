"""core.offsets.watermark: a partition without a leader yet is asked again, briefly; any other
error stands at once. core.reader.read_to_end: reads until every partition reports its end."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from core import offsets
from core.reader import read_to_end


class Marks:
    """A consumer whose watermark lookups fail with ``errors`` first, then answer (0, 42)."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return 0, 42


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offsets.time, "sleep", lambda s: None)


def test_a_new_partition_is_asked_again_until_it_has_a_leader() -> None:
    c = Marks(KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART)  # fmt: skip
    assert offsets.watermark(c, TopicPartition("t", 0)) == (0, 42)  # type: ignore[arg-type]
    assert c.calls == 4


def test_other_errors_and_a_leader_that_never_comes_stand() -> None:
    c = Marks(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        offsets.watermark(c, TopicPartition("t", 0))  # type: ignore[arg-type]
    assert c.calls == 1
    c = Marks(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        offsets.watermark(c, TopicPartition("t", 0), settle=0.0)  # type: ignore[arg-type]


class Msg:
    def __init__(self, partition: int, offset: int, error: KafkaError | None = None) -> None:
        self._p, self._o, self._e = partition, offset, error

    def error(self) -> KafkaError | None:
        return self._e

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class Feed:
    def __init__(self, batches: list[list[Msg]]) -> None:
        self.batches = batches
        self.assigned: list[Any] = []

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = tps

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        return self.batches.pop(0) if self.batches else []


def test_read_to_end_stops_at_each_partitions_end() -> None:
    eof = KafkaError(KafkaError._PARTITION_EOF)
    feed = Feed([[Msg(0, 0), Msg(1, 0)], [Msg(0, 1), Msg(0, 2, eof)], [Msg(1, 1, eof)]])
    got = [(m.partition(), m.offset()) for m in read_to_end(feed, "t", {0: 0, 1: 0}, 5.0)]  # type: ignore[arg-type]
    assert got == [(0, 0), (1, 0), (0, 1)]
    assert not feed.batches


def test_read_to_end_strict_or_not() -> None:
    transport = KafkaError(KafkaError._TRANSPORT)
    eof = KafkaError(KafkaError._PARTITION_EOF)
    with pytest.raises(RuntimeError, match="reading t"):
        list(read_to_end(Feed([[Msg(0, 0, transport)]]), "t", {0: 0}, 5.0))  # type: ignore[arg-type]
    lenient = Feed([[Msg(0, 0, transport), Msg(0, 0)], [Msg(0, 1, eof)]])
    batches = []
    got = list(read_to_end(lenient, "t", {0: 0}, 5.0, lambda: batches.append(1), strict=False))  # type: ignore[arg-type]
    assert len(got) == 1 and len(batches) == 2
    with pytest.raises(TimeoutError):
        list(read_to_end(Feed([]), "t", {0: 0}, 0.0))  # type: ignore[arg-type]
