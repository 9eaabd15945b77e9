"""The live feed behind the server-sent events: curated topics (and staged lines) as they arrive.

One confluent-kafka consumer per web process, in a thread (librdkafka blocks), assigned to every
partition without joining a group: the web view must never appear as a pipeline consumer group
nor move anyone's offsets. Records are decoded with the pipeline's codec and handed to the event
loop; each game keeps a short buffer so a page that connects a moment after it queried Postgres
misses nothing (the browser de-duplicates by record identity).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from core.kafka_config import client_config
from core.settings import Settings
from core.topics import topic_name
from oddsflow.errors import kafka_reason
from schemas.codec import DecodeError, default_codec

log = logging.getLogger("oddsflow.web.live")

# catalog name -> the event name the browser listens for
FOLLOWED = {
    "staging.odds_lines": "line",
    "curated.consensus": "consensus",
    "curated.steam_moves": "steam",
    "curated.sharp_signals": "sharp",
}
BUFFER_PER_GAME = 4000
Listener = Callable[[str, dict[str, Any]], None]


def jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """Avro records carry datetimes and enums; the browser wants ISO strings and plain values."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif hasattr(v, "value") and not isinstance(v, int | float | str):
            out[k] = v.value
        else:
            out[k] = v
    return out


class LiveFeed:
    """Follows :data:`FOLLOWED` from their end; fans records out to per-game listeners."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        self.topics = {topic_name(settings, t): ev for t, ev in FOLLOWED.items()}
        self.listeners: dict[str, set[Listener]] = defaultdict(set)
        self.buffers: dict[str, deque[tuple[str, dict[str, Any]]]] = defaultdict(
            lambda: deque(maxlen=BUFFER_PER_GAME)
        )
        self.received = 0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oddsflow-web-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def subscribe(self, game_id: str, listener: Listener) -> list[tuple[str, dict[str, Any]]]:
        """Register ``listener`` for one game; returns what is buffered for it so far."""
        self.listeners[game_id].add(listener)
        return list(self.buffers.get(game_id, ()))

    def unsubscribe(self, game_id: str, listener: Listener) -> None:
        self.listeners[game_id].discard(listener)

    # -- the consumer thread ------------------------------------------------------------------

    def _assignment(self, consumer: Consumer) -> list[TopicPartition]:
        md = consumer.list_topics(timeout=10)
        return [
            TopicPartition(t, p, OFFSET_END)
            for t in self.topics
            if t in md.topics and md.topics[t].error is None
            for p in md.topics[t].partitions
        ]

    def _run(self) -> None:
        consumer = Consumer(
            client_config(
                self.settings,
                **{
                    "group.id": f"oddsflow-web-live-{uuid.uuid4().hex[:8]}",  # never joined
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",
                    "log_level": 0,
                },
            )
        )
        codec = default_codec()
        try:
            assigned: set[tuple[str, int]] = set()
            while not self._stop.is_set():
                # topics (or partitions) created after start-up are picked up within seconds
                try:
                    tps = [
                        tp for tp in self._assignment(consumer)
                        if (tp.topic, tp.partition) not in assigned
                    ]  # fmt: skip
                except Exception as exc:  # broker away: keep trying, the page shows what it has
                    unreachable = isinstance(exc, KafkaException) and kafka_reason(exc)[1]
                    # an unreachable broker is announced once ("waiting for Kafka at …")
                    (log.debug if unreachable else log.warning)("live feed: %s", exc)
                    tps = []
                if tps:
                    consumer.incremental_assign(tps)
                    assigned |= {(tp.topic, tp.partition) for tp in tps}
                if assigned:
                    self.ready.set()
                self._consume_for(consumer, codec, seconds=5.0)
        finally:
            consumer.close()

    def _consume_for(self, consumer: Consumer, codec: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            msgs = consumer.consume(500, 0.5)
            batch: list[tuple[str, str, dict[str, Any]]] = []
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("live feed: %s", err)
                    continue
                try:
                    rec = codec.decode(msg.value())
                except DecodeError as exc:
                    log.warning("live feed: undecodable record on %s: %s", msg.topic(), exc)
                    continue
                event = self.topics.get(msg.topic())
                if event is not None and "game_id" in rec:
                    batch.append((rec["game_id"], event, jsonable(rec)))
            if batch:
                self.loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: list[tuple[str, str, dict[str, Any]]]) -> None:
        """On the event loop: buffer, then hand to each listener of the game."""
        for game_id, event, rec in batch:
            self.received += 1
            self.buffers[game_id].append((event, rec))
            for listener in list(self.listeners.get(game_id, ())):
                listener(event, rec)
