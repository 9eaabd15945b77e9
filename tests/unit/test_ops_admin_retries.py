"""Admin calls retry transient broker errors with backoff, and give up at once on the others."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

from core.offsets import ADMIN_ATTEMPTS, KafkaUnavailable, committed_offsets


class FlakyAdmin:
    """Answers ``list_consumer_group_offsets`` with the given errors first, then the offsets."""

    def __init__(self, errors: list[KafkaError]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def list_consumer_group_offsets(self, request: list[Any], **_kw: Any) -> dict[str, Future]:
        self.calls += 1
        group = request[0].group_id
        fut: Future = Future()
        if self.errors:
            fut.set_exception(KafkaException(self.errors.pop(0)))
        else:
            fut.set_result(
                ConsumerGroupTopicPartitions(group, [TopicPartition("raw.odds.sim", 0, 42)])
            )
        return {group: fut}


PARSE_FAILURE = KafkaError(
    KafkaError._BAD_MSG, "LISTCONSUMERGROUPOFFSETS worker failed to parse response"
)


def test_a_transient_failure_is_retried_and_the_answer_returned() -> None:
    admin = FlakyAdmin([PARSE_FAILURE, KafkaError(KafkaError._TRANSPORT, "connection reset")])
    assert committed_offsets(admin, "oddsflow-staging") == {("raw.odds.sim", 0): 42}  # type: ignore[arg-type]
    assert admin.calls == 3


def test_retries_are_bounded() -> None:
    admin = FlakyAdmin([PARSE_FAILURE] * 10)
    with pytest.raises(KafkaUnavailable, match="failed to parse response") as err:
        committed_offsets(admin, "oddsflow-staging")  # type: ignore[arg-type]
    assert err.value.transient
    assert admin.calls == ADMIN_ATTEMPTS


@pytest.mark.parametrize("code", [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError._TIMED_OUT])
def test_a_refusal_or_a_timeout_is_not_retried(code: int) -> None:
    admin = FlakyAdmin([KafkaError(code, "no")] * 10)
    with pytest.raises(KafkaUnavailable) as err:
        committed_offsets(admin, "oddsflow-staging")  # type: ignore[arg-type]
    assert not err.value.transient
    assert admin.calls == 1
