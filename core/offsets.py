"""Offsets and watermarks: where each partition starts and ends, and where a group stands.

The one set of offset look-ups every floor above uses (the operator's lag, health, replay and
metrics; the stages' status and reconciliation): the admin client's ``list_offsets`` and
``list_consumer_group_offsets``, retried with backoff while the broker fails transiently, and
:func:`high_watermarks` for a consumer that asks "how far is the end" right after a topic was
created (its leader not yet elected: ``NOT_LEADER_FOR_PARTITION``, ``LEADER_NOT_AVAILABLE``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import tenacity
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from core.kafka_config import client_config
from core.settings import Settings

T = TypeVar("T")
log = logging.getLogger("oddsflow.lag")
TP = tuple[str, int]


class KafkaUnavailable(RuntimeError):
    """The broker did not answer: one line for the operator, not a stack trace.

    ``transient``: the broker answered with an error worth one more try (a request it failed to
    serve while busy, a connection lost); not a timeout (already waited) or a refusal."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def admin_client(settings: Settings) -> AdminClient:
    """An admin client that fails within seconds and keeps librdkafka's retries off stderr."""
    return AdminClient(
        client_config(settings, **{"socket.connection.setup.timeout.ms": 5000, "log_level": 0})
    )


#: Errors another try will not change (no permission, a malformed request), and a timeout that
#: has already been waited for.
NOT_RETRIED = frozenset(
    {
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.INVALID_GROUP_ID,
        KafkaError._INVALID_ARG,
        KafkaError._TIMED_OUT,
    }
)
ADMIN_ATTEMPTS = 4  # the first try and three more, 0.5, 1 and 2 s apart


def result_of(fut: Any, what: str, timeout: float) -> Any:
    try:
        return fut.result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if isinstance(err, KafkaError):
            raise KafkaUnavailable(
                f"{what}: {err.str()}", transient=err.code() not in NOT_RETRIED
            ) from None
        raise KafkaUnavailable(f"{what}: {exc}") from None
    except TimeoutError:
        raise KafkaUnavailable(f"{what}: no answer from the broker within {timeout:.0f}s") from None


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("%s; trying again in %.1fs", exc, state.upcoming_sleep)


def retried(call: Callable[[], T]) -> T:
    """``call()``, again with exponential backoff (tenacity) while it fails transiently: one admin
    request the broker failed to serve while the workers were busy ended a long backfill once
    (``LISTCONSUMERGROUPOFFSETS worker failed to parse response``)."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(ADMIN_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=0.5, max=4.0),
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, KafkaUnavailable) and e.transient
        ),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(call)


def list_offsets_at(
    admin: AdminClient, tps: Iterable[TP], spec: OffsetSpec, timeout: float
) -> dict[TP, int]:
    request = {TopicPartition(t, p): spec for t, p in tps}
    if not request:
        return {}

    def call() -> dict[TP, int]:
        futures = admin.list_offsets(
            request, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=timeout
        )
        return {
            (tp.topic, tp.partition): result_of(f, f"offsets of {tp.topic}", timeout).offset
            for tp, f in futures.items()
        }

    return retried(call)


def end_offsets(admin: AdminClient, tps: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
    return list_offsets_at(admin, tps, OffsetSpec.latest(), timeout)


def start_offsets(admin: AdminClient, tps: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
    return list_offsets_at(admin, tps, OffsetSpec.earliest(), timeout)


def committed_offsets(admin: AdminClient, group: str, timeout: float = 10.0) -> dict[TP, int]:
    """The group's committed offsets (only partitions it committed)."""

    def call() -> Any:
        futures = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=timeout
        )
        return result_of(futures[group], f"offsets of group {group}", timeout)

    res = retried(call)
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in res.topic_partitions or []
        if tp.offset >= 0 and tp.error is None
    }
