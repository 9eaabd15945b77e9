"""Per-minute quality reports of the staging worker (``operational.quality``).

Why: the roadmap's KPI (more than 95% of records pass the quality gates) must be readable from
Postgres per source and minute without re-reading the topics. The staging agents already count
every decision (``StagingCounters``); a faust timer turns those counts into one
``QualityReport`` per source and minute, which the sink upserts into ``<operational>.quality``.

Accounting, per source, at the record (part) level of the reconciliation:

- ``promoted`` and ``deduplicated``: staged candidates the dedupe agent decided (parts it
  suppressed as already decided before a crash, ``replayed``, are not decided again: not counted);
- ``dead_lettered``: dead-letter parts (a whole-record failure is one part, each refused book or
  side one; records the quality gate quarantines are dead letters too);
- ``records_in = promoted + deduplicated + dead_lettered`` and
  ``pass_rate = (promoted + deduplicated) / records_in``: a de-duplicated record passed every
  check, it only repeated what was known.

Several staging workers share the work, so no one process sees a source's whole minute. Every
``[pipeline] quality_report_seconds`` each worker's timer sends what its counters gained, per
(source, minute of the tick), to an internal topic keyed by source; the ``staging-quality`` agent
adds those deltas up per (source, minute) and publishes the totals so far of each minute that
changed (the table keeps the latest: upsert). A report goes to the partition number of the deltas
it sums and carries the position of the last delta in it (``oddsflow-quality-upto``), so an
aggregator that takes the partition over (restart, rebalance) reloads the recent totals from
``operational.quality`` and skips redelivered deltas already in them. A worker's last delta is
sent when it stops. The counters live in memory: after a crash, re-processed records are counted
again (``oddsflow pipeline quality``'s reconciliation is the exact account).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaError, TopicPartition
from faust.types import TP

from oddsflow.kafka_config import consumer_config
from oddsflow.settings import Settings
from oddsflow.topics import topic_name
from schemas.codec import default_codec

log = logging.getLogger("oddsflow.staging.quality")

TOPIC = "operational.quality"
SCHEMA = "oddsflow.operational.QualityReport"
STAGE = "staging"
UPTO_HEADER = "oddsflow-quality-upto"
#: Minutes an aggregator keeps (and reloads after a takeover): deltas for older minutes would
#: restart their totals from zero, so this bounds how late a worker's delta may arrive.
HORIZON = timedelta(minutes=15)


def deltas_topic(settings: Settings) -> str:
    """The internal topic of per-worker deltas (named as faust names this app's topics)."""
    return f"{settings.kafka.topic_prefix}oddsflow-staging-staging-quality-deltas"


@dataclass(slots=True)
class Tally:
    """Counts of one source in one window."""

    promoted: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0

    @property
    def records_in(self) -> int:
        return self.promoted + self.deduplicated + self.dead_lettered

    @property
    def pass_rate(self) -> float:
        n = self.records_in
        return (self.promoted + self.deduplicated) / n if n else 1.0

    def add(self, other: Tally) -> None:
        self.promoted += other.promoted
        self.deduplicated += other.deduplicated
        self.dead_lettered += other.dead_lettered

    def minus(self, other: Tally) -> Tally:
        return Tally(
            self.promoted - other.promoted,
            self.deduplicated - other.deduplicated,
            self.dead_lettered - other.dead_lettered,
        )

    def encode(self, source: str, window: datetime) -> bytes:
        w = int(window.timestamp())
        return json.dumps(
            [source, w, self.promoted, self.deduplicated, self.dead_lettered]
        ).encode()

    @staticmethod
    def decode(value: bytes) -> tuple[str, datetime, Tally]:
        source, w, p, d, x = json.loads(value)
        return source, datetime.fromtimestamp(w, UTC), Tally(p, d, x)


def _counter(counters: Any, name: str) -> Counter[str]:
    """A per-source counter of the agents, empty when this version of them has none."""
    value = getattr(counters, name, None)
    return value if isinstance(value, Counter) else Counter()


def totals(counters: Any) -> dict[str, Tally]:
    """Cumulative tallies per source from the agents' live counters."""
    promoted, dedup = _counter(counters, "promoted"), _counter(counters, "deduplicated")
    dead = _counter(counters, "raw_dead") + _counter(counters, "parts_dead")
    sources = set(promoted) | set(dedup) | set(dead)
    return {s: Tally(promoted[s], dedup[s], dead[s]) for s in sources}


def window_of(now: datetime) -> datetime:
    """The minute ``now`` falls in (UTC)."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


class Deltas:
    """One worker's cumulative counters in, what they gained per (source, minute of now) out."""

    def __init__(self) -> None:
        self._seen: dict[str, Tally] = {}

    def since_last(
        self, cumulative: dict[str, Tally], now: datetime
    ) -> list[tuple[str, datetime, Tally]]:
        window = window_of(now)
        out = []
        for source, tally in sorted(cumulative.items()):
            delta = tally.minus(self._seen.get(source, Tally()))
            self._seen[source] = Tally(tally.promoted, tally.deduplicated, tally.dead_lettered)
            if delta.records_in:
                out.append((source, window, delta))
        return out


class Windows:
    """One deltas partition's totals per (source, minute), and which changed. Pure."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, datetime], Tally] = {}
        self.upto = -1  # position of the last delta in the published totals
        self._changed: set[tuple[str, datetime]] = set()

    def load(self, source: str, window: datetime, tally: Tally, upto: int | None) -> None:
        """A published report (the latest per key wins) and the delta position it covers."""
        self.totals[(source, window)] = tally
        if upto is not None:
            self.upto = max(self.upto, upto)

    def add(self, source: str, window: datetime, delta: Tally, offset: int) -> bool:
        """Add a delta at ``offset``; False if the published totals already hold it."""
        if offset <= self.upto:
            return False
        key = (source, window)
        self.totals.setdefault(key, Tally()).add(delta)
        self._changed.add(key)
        self.upto = offset
        return True

    def due(self) -> list[tuple[str, datetime, Tally]]:
        """(source, minute, totals so far) changed since the last call; old minutes forgotten."""
        out = [(s, w, self.totals[(s, w)]) for s, w in sorted(self._changed, key=lambda k: k[1])]
        self._changed.clear()
        if self.totals:
            horizon = max(w for _s, w in self.totals) - HORIZON
            self.totals = {k: t for k, t in self.totals.items() if k[1] >= horizon}
        return out


def report(source: str, window: datetime, tally: Tally, now: datetime) -> dict[str, Any]:
    """The QualityReport record of one source and minute."""
    return {
        "source": source,
        "stage": STAGE,
        "window_start": window,
        "records_in": tally.records_in,
        "promoted": tally.promoted,
        "deduplicated": tally.deduplicated,
        "dead_lettered": tally.dead_lettered,
        "pass_rate": tally.pass_rate,
        "mean_score": None,
        "completeness": None,
        "accuracy": None,
        "consistency": None,
        "timeliness": None,
        "emitted_at": now,
    }


def reload(settings: Settings, partition: int, timeout: float = 60.0) -> Windows:
    """The recent totals of ``partition`` from the published reports (blocking: run in a thread)."""
    topic = topic_name(settings, TOPIC)
    decode = default_codec().decode
    windows = Windows()
    group = f"{settings.kafka.topic_prefix}oddsflow-staging-quality-reload"
    consumer = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        since = int((datetime.now(UTC) - HORIZON - timedelta(minutes=1)).timestamp() * 1000)
        [start] = consumer.offsets_for_times([TopicPartition(topic, partition, since)], timeout=10)
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        offset = start.offset if start.offset >= 0 else high
        if offset >= high:
            return windows
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reloading quality totals of {topic}:{partition}")
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return windows
                    raise RuntimeError(f"reloading quality totals: {err}")
                r = decode(msg.value() or b"")
                if r["stage"] != STAGE:
                    continue
                upto = dict(msg.headers() or ()).get(UPTO_HEADER)
                tally = Tally(r["promoted"], r["deduplicated"], r["dead_lettered"])
                windows.load(r["source"], r["window_start"], tally, int(upto) if upto else None)
    finally:
        consumer.close()


def register_quality_report(app: faust.App, settings: Settings, counters: Any) -> None:
    """Every worker sends its deltas; the ``staging-quality`` agent publishes the totals."""
    out_topic = topic_name(settings, TOPIC)
    encode = default_codec().encoder(SCHEMA)
    deltas = app.topic(deltas_topic(settings), partitions=settings.kafka.partitions, internal=True)
    deltas_name = deltas.get_topic_name()
    mine = Deltas()
    owned: dict[int, Windows] = {}

    def _reload_or_empty(partition: int) -> Windows:
        try:
            return reload(settings, partition)
        except Exception as exc:  # the minute's totals restart: a metric must not stop staging
            log.warning("quality totals of partition %d not reloaded: %s", partition, exc)
            return Windows()

    async def send_deltas() -> None:
        for source, window, delta in mine.since_last(totals(counters), datetime.now(UTC)):
            await deltas.send(key=source.encode(), value=delta.encode(source, window))

    @app.timer(settings.pipeline.quality_report_seconds, name="staging-quality-deltas")
    async def every_interval() -> None:
        await send_deltas()

    @app.on_before_shutdown.connect
    async def last_deltas(sender: Any, **kwargs: Any) -> None:
        """The consumer has stopped and the producer is flushed next: the final counts."""
        try:
            await send_deltas()
        except Exception as exc:  # stopping must not fail over a metric
            log.warning("last quality counts not sent: %s", exc)

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == deltas_name:
                owned.pop(tp.partition, None)

    @app.agent(deltas, name="staging-quality")
    async def aggregate(stream: faust.StreamT) -> None:
        """Deltas of every worker → per-(source, minute) totals → operational.quality."""
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(1000, within=0.2):
            touched: set[int] = set()
            for event in events:
                p, offset = event.message.partition, event.message.offset
                windows = owned.get(p)
                if windows is None:
                    windows = owned[p] = await loop.run_in_executor(None, _reload_or_empty, p)
                source, window, delta = Tally.decode(event.value)
                if windows.add(source, window, delta, offset):
                    touched.add(p)
            now = datetime.now(UTC)
            for p in touched:
                windows = owned[p]
                upto = [(UPTO_HEADER, str(windows.upto).encode())]
                for source, window, tally in windows.due():
                    value = encode(report(source, window, tally, now))
                    await app.producer.send(out_topic, source.encode(), value, p, None, upto)
