"""Offsets and watermarks: where each partition starts and ends, and where a group stands.

The one set of offset look-ups every floor above uses (the operator's lag, health, replay and
metrics; the stages' status and reconciliation): the admin client's ``list_offsets`` and
``list_consumer_group_offsets``, retried with backoff while the broker fails transiently, and
:func:`high_watermarks` for a consumer that asks "how far is the end" right after a topic was
created (its leader not yet elected: ``NOT_LEADER_FOR_PARTITION``, ``LEADER_NOT_AVAILABLE``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import tenacity
from confluent_kafka import (
    Consumer,
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


#: What a partition's leader answers for a few seconds after its topic was created or while
#: leadership moves: worth asking again, not an error to report (CI once failed on
#: ``NOT_LEADER_FOR_PARTITION: Failed to get watermark offsets`` right after a collector had
#: created its topic).
SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
SETTLE_SECONDS = 10.0  # how long a settling partition is asked again before the error stands


def _settling(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() in SETTLING


def watermark(
    consumer: Consumer, tp: TopicPartition, timeout: float = 10.0, settle: float = SETTLE_SECONDS
) -> tuple[int, int]:
    """(low, high) watermark of one partition: where it starts and how far its end is now
    (for a read_committed consumer the end is the last stable offset). Asked again for up to
    ``settle`` seconds while the partition has no leader yet (:data:`SETTLING`)."""
    deadline = time.monotonic() + settle
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return low, high
        except KafkaException as exc:
            if not _settling(exc) or time.monotonic() >= deadline:
                raise
            log.info("%s [%d]: %s; asking again", tp.topic, tp.partition, exc)
            time.sleep(0.2)


def topic_watermarks(
    consumer: Consumer,
    topic: str,
    timeout: float = 10.0,
    topics: Mapping[str, Any] | None = None,
    settle: float = SETTLE_SECONDS,
) -> dict[int, tuple[int, int]]:
    """``{partition: (low, high)}`` of every partition of ``topic``; empty when the topic does
    not exist. ``topics``: a ``list_topics().topics`` answer already at hand (else it is asked,
    again for up to ``settle`` seconds while a new topic's metadata says it has no leader).
    One place answers "how far is the end" for the operator's tools, the status commands and
    the read-to-end reader (:mod:`core.reader`)."""
    deadline = time.monotonic() + settle
    while True:
        meta = topics if topics is not None else consumer.list_topics(topic, timeout=timeout).topics
        md = meta.get(topic)
        if md is None:
            return {}
        if md.error is None:
            break
        # an absent topic answers UNKNOWN_TOPIC_OR_PART at once and for good: not waited on
        leaderless = md.error.code() == KafkaError.LEADER_NOT_AVAILABLE
        if topics is not None or not leaderless or time.monotonic() >= deadline:
            return {}
        time.sleep(0.2)
    return {
        p: watermark(consumer, TopicPartition(topic, p), timeout, settle) for p in md.partitions
    }
