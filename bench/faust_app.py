"""The faust application of the benchmark's baselines (no worker of the product runs on faust).

The stream workers left faust for one transaction loop (``streams.runtime``, DESIGN.md,
"Runtime"); the benchmark keeps a faust per-event staging pipeline and faust's pass-through
ceiling, so what leaving it bought stays measured in every run.
"""

from __future__ import annotations

import faust

from core.kafka_config import faust_credentials, record_max_bytes
from core.settings import Settings

#: The baselines run at_least_once (what the faust staging worker ran until 2026-12-02).
PROCESSING_GUARANTEE = {"staging": "at_least_once", "faust-staging": "at_least_once"}


def _bounded_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Make faust's worker consumer use our fetch wait instead of its fixed 1,500 ms.

    faust builds the aiokafka consumer itself with ``fetch_max_wait_ms=1500`` and has no
    setting for it; aiokafka reads the attribute when the consumer starts, so it is set on the
    consumer faust just built, before faust starts it.
    """
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    original = getattr(thread, "_oddsflow_original", thread._create_worker_consumer)

    def create(self: driver.AIOKafkaConsumerThread, transport: object) -> object:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by consumer.start()
        return consumer

    thread._oddsflow_original = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create  # type: ignore[method-assign]


def create_app(settings: Settings, role: str, processing_guarantee: str | None = None) -> faust.App:
    """A faust app for one worker role; its id is its consumer group."""
    guarantee = processing_guarantee or PROCESSING_GUARANTEE.get(role, "exactly_once")
    app_id = f"{settings.kafka.topic_prefix}oddsflow-{role}"
    _bounded_fetch_wait(settings.worker.fetch_max_wait_ms)
    datadir = settings.state_dir / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        broker_credentials=faust_credentials(settings),  # TLS / SCRAM from settings
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        producer_acks=-1,
        processing_guarantee=guarantee,
        producer_linger_ms=5,
        # Raw records up to [collectors] max_payload_bytes are read, and dead-lettered whole.
        consumer_max_fetch_size=record_max_bytes(settings),
        producer_max_request_size=record_max_bytes(settings),
        consumer_auto_offset_reset="earliest",
        # Commit on the timer only. With a count, faust's fetcher task commits too, and stopping
        # cancels that task: a commit cancelled mid-way has already taken its offsets off the
        # acked list, so nothing after them is ever committed again and a SIGTERM left up to a
        # second's input uncommitted (safe, re-read and de-duplicated, but not the clean stop
        # the worker promises; test_sigterm_commits_what_was_consumed_and_exits_quickly).
        broker_commit_every=2**31 - 1,
        # A killed worker's partitions move to the others after 10 s, not faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        stream_wait_empty=True,
        table_standby_replicas=0,
        topic_disable_leader=True,
        worker_redirect_stdouts=False,
    )
