"""The curated feature worker: staged records in, curated records out, exactly once, at once.

One step, declared in ``FeaturesTask`` (``self.steps``, which ``process`` dispatches through and
``oddsflow topology`` prints):

    staging.odds_lines ──────┐                ┌──► curated.line_velocity, .steam_moves,
    staging.betting_splits ──┼──► features ───┤    .sharp_signals, .consensus, .feature_vectors
    staging.games ───────────┘   (state:      └──► operational.pipeline_events (late records)
                                  features-state)

Input: staging.odds_lines, staging.betting_splits and staging.games, all keyed by game id, so one
game's records share a partition number, and the ``range`` assignor gives one worker the same
partition number of all three. Each input partition has its own engine and event-time clock
(``PartitionFeatures``): every decision is taken from that partition's record order alone, so a
replay, a restart or another worker makes the same decisions.

It runs on the stream workers' transaction loop (``streams.runtime``): each turn's curated
records, late-event reports, the state changes of the partitions it touched (``<group>-features-
state-changelog``, compacted, partition = input partition) and the consumed offsets commit in one
transaction. Why it left faust (it was a faust agent until 2026-11-26): faust's exactly_once could
not keep a partition's state, outputs and offsets together through crashes (DESIGN.md), and its
per-message path cost more than the features themselves.

* Results at once: a record is applied as soon as the three topics' merge releases it, and its
  results are in the same transaction (``live.py``); a record older than its game's applied
  history, within the allowed lateness, is put in its place and the changed results are re-sent
  (corrections, withdrawals). Live, a steam move reaches subscribers within the loop's turn.
* Idle flush: after ``[features] idle_flush_seconds`` of quiet on a partition (env
  ``ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS``) the games' end-of-input work is done (a final score
  that came before first pitch settles the vectors). The one wall-clock decision: deterministic
  for a complete input (a backfill, a test).
* Late records (beyond the lateness) are not merged: each becomes an
  ``operational.pipeline_events`` record (kind ``late_event``, event id from the input offset, so
  a replay upserts the same rows). Staging dead-letters such records first, so few get here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from core.settings import Settings
from core.topics import spec, topic_name
from schemas.codec import default_codec
from streams.features.engine import Output as EngineOutput
from streams.features.partitioned import GAME, LINE, SPLIT, PartitionFeatures
from streams.runtime.changelog import latest
from streams.runtime.steps import Step, Steps
from streams.runtime.task import Entry, Output

log = logging.getLogger("oddsflow.features")

INPUTS = {"staging.odds_lines": LINE, "staging.betting_splits": SPLIT, "staging.games": GAME}
OUTPUTS = (
    "curated.line_velocity",
    "curated.steam_moves",
    "curated.sharp_signals",
    "curated.consensus",
    "curated.feature_vectors",
)
EVENTS = "operational.pipeline_events"
STATE_TABLE = "features-state"
TICK_SECONDS = 0.5  # how often queued inputs and idle partitions are looked at
IDLE_FLUSH_ENV = "ODDSFLOW_FEATURES__IDLE_FLUSH_SECONDS"  # [features] idle_flush_seconds


def features_group(settings: Settings) -> str:
    """The consumer group (and transactional id stem); a backfilled version has its own."""
    group = f"{settings.kafka.topic_prefix}oddsflow-features"
    version = settings.features.output_prefix.strip(".")
    return f"{group}-{version}" if version else group


def state_topic(settings: Settings) -> str:
    """The compacted changelog of the worker's state (the name faust gave it, kept)."""
    return f"{features_group(settings)}-{STATE_TABLE}-changelog"


class FeaturesTask:
    """The features role on the transaction loop (see the module docstring)."""

    name = "features"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        codec = default_codec()
        self._decode = codec.decode
        self._topics = {topic_name(settings, t): kind for t, kind in INPUTS.items()}
        self._topic_of_kind = {kind: name for name, kind in self._topics.items()}
        schemas = {spec(t).schema: k for t, k in INPUTS.items()}
        self._kind_of = {  # every version of each input schema
            fp: schemas[sv.name]
            for fp, sv in codec.registry.by_fingerprint.items()
            if sv.name in schemas
        }
        prefix = settings.features.output_prefix  # "" live; "v2." backfills a version
        self._out_names = {t: prefix + topic_name(settings, t) for t in OUTPUTS}
        self._encoders = {t: codec.encoder(spec(t).schema) for t in OUTPUTS}
        self._events_topic = prefix + topic_name(settings, EVENTS)
        # The topology (the module docstring's diagram): one step.
        self.steps = Steps(
            Step(
                "features",
                inputs=(*self._topics,),
                outputs=(*self._out_names.values(), self._events_topic),
                handler=self._features,
                state=STATE_TABLE,
            )
        )
        self._encode_event = codec.encoder(spec(EVENTS).schema)
        self.group = features_group(settings)
        self.state_topic = state_topic(settings)
        self._idle_s = settings.features.idle_flush_seconds
        self._worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.stats: Counter[str] = Counter()
        self.parts: dict[int, PartitionFeatures] = {}
        self._last_input: dict[int, float] = {}
        self._next_tick = 0.0

    # ------------------------------------------------------------------ wiring

    def input_topics(self) -> list[str]:
        return self.steps.inputs()

    def internal_topics(self) -> list[str]:
        return []

    def changelog_topics(self) -> dict[str, str]:
        return {STATE_TABLE: self.state_topic}

    def assign(self, partitions: set[int], state: dict[str, dict[int, list[Entry]]]) -> None:
        now = time.monotonic()
        for p in sorted(partitions):
            pf = self.parts[p] = PartitionFeatures(self.settings.features, p)
            games = pf.restore(latest(state[STATE_TABLE].get(p, [])), self._decode, now)
            self._last_input[p] = now
            if games:
                log.info(
                    "features: partition %d restored (%d games, %d queued records)",
                    p, games, pf.inputs.size,
                )  # fmt: skip

    def revoke(self, partitions: set[int]) -> None:
        for p in partitions:
            self.parts.pop(p, None)
            self._last_input.pop(p, None)

    def counters(self) -> dict[str, Any]:
        live = [pf.live for pf in self.parts.values()]
        return {
            **self.stats,
            "corrected": sum(x.corrected for x in live),
            "retracted": sum(x.retracted for x in live),
            "replays": sum(x.replays for x in live),
        }

    def describe(self) -> dict[str, Any]:
        """The declared step, with the worker's inputs, outputs and state table."""
        return self.steps.describe(self.group, self.changelog_topics(), self.internal_topics())

    # ------------------------------------------------------------------ a turn

    def process(self, msgs: list[Message], now: float, out: Output) -> None:
        self.steps.dispatch(msgs, now, out)

    def tick(self, now: float, out: Output) -> None:
        """Queued records whose other topics went quiet, and idle partitions' end of input."""
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_SECONDS
        waiting = [p for p, pf in self.parts.items() if pf.inputs.size]
        if waiting:
            self._release(waiting, now, out)
        for p in sorted(self.parts):
            pf = self.parts[p]
            idle = now - self._last_input.get(p, now) >= self._idle_s
            if idle and not pf.inputs.size and pf.pending():
                self.stats["idle_flushes"] += 1
                self._emit(pf.flush_all(), out)
                self._persist(pf, out)

    def flush(self, out: Output) -> None:
        """Nothing waits for a timer: every result left with its records."""

    # ------------------------------------------------------------------ the step

    def _features(self, msgs: list[Message], now: float, out: Output) -> None:
        """The step: staged records into their partitions' merge queues; what the merge
        releases goes through the engine (``_release``)."""
        touched: set[int] = set()
        parts, topics, kind_of, decode = self.parts, self._topics, self._kind_of, self._decode
        for msg in msgs:
            topic, p, offset = msg.topic(), msg.partition(), msg.offset()
            out.consumed(topic, p, offset + 1)
            pf = parts.get(p)
            if pf is None:
                continue  # not ours any more: the loop drops such records (cannot happen)
            topic_kind = topics[topic]
            if offset < pf.pos.get(topic_kind, 0):
                self.stats["replayed"] += 1  # already in the restored state
                continue
            pf.pos[topic_kind] = offset + 1
            touched.add(p)
            value: bytes = msg.value()
            kind = kind_of.get(value[2:10]) if value else None
            if kind is None:
                self.stats["unknown_schema"] += 1
                continue
            pf.inputs.put(kind, offset, value, decode(value), now)
        for p in touched:
            self._last_input[p] = now
            parts[p].queue_dirty = True
        if touched:
            self._release(touched, now, out)

    # ------------------------------------------------------------------ helpers

    def _caught_up(self, p: int, out: Output) -> Callable[[str], bool]:
        """Whether a topic of partition ``p`` has been read up to its end of log (a commit
        marker may follow the last record: transactional producers write one)."""

        def check(kind: str) -> bool:
            return out.behind(self._topic_of_kind[kind], p, 1) is False

        return check

    def _release(self, ps: Iterable[int], now: float, out: Output) -> None:
        """Feed each partition's aligned records to its engine; emit, report, persist."""
        results: list[EngineOutput] = []
        late: list[tuple[str, int, int, dict[str, Any]]] = []
        for p in sorted(ps):
            pf = self.parts[p]
            items: list[tuple[str, dict[str, Any]]] = []
            where: dict[str, tuple[str, int]] = {}
            for kind, offset, rec in pf.inputs.release(now, self._caught_up(p, out)):
                items.append((kind, rec))
                where[rec["game_id"]] = (self._topic_of_kind[kind], offset)
            if not items:
                continue
            pf.queue_dirty = True
            self.stats["records"] += len(items)
            results += pf.process(items)
            for item in pf.drain_late():
                topic, offset = where.get(item["game_id"], ("", -1))
                late.append((topic, p, offset, item))
        self._emit(results, out)
        if late:
            self._report_late(late, out)
        for p in sorted(ps):
            self._persist(self.parts[p], out)

    def _emit(self, results: list[EngineOutput], out: Output) -> None:
        """Curated records into the open transaction (the hot path: ~3 a staged line)."""
        if not results:
            return
        produce = out.produce
        names, encoders = self._out_names, self._encoders
        for topic, rec in results:
            produce(names[topic], encoders[topic](rec), rec["game_id"].encode())
        self.stats.update(topic for topic, _ in results)

    def _report_late(self, late: list[tuple[str, int, int, dict[str, Any]]], out: Output) -> None:
        now = datetime.now(UTC)
        for topic, p, offset, item in late:
            details = {
                "game_id": item["game_id"],
                "record_kind": item["kind"],
                "event_time": item["event_time"].isoformat(),
                "watermark": item["watermark"].isoformat(),
                "topic": topic,
                "partition": str(p),
                "offset": str(offset),
            }
            value = self._encode_event(
                {
                    "event_id": f"features|late|{topic}|{p}|{offset}|{item['event_time']}",
                    "stage": "features",
                    "kind": "late_event",
                    "at": now,
                    "worker": self._worker_name,
                    "details": details,
                }
            )
            out.produce(self._events_topic, value, b"features")
        self.stats["late"] += len(late)

    def _persist(self, pf: PartitionFeatures, out: Output) -> None:
        out.changelog(self.state_topic, pf.partition, pf.take_changes())


def describe(settings: Settings) -> dict[str, Any]:
    """What the worker consumes, writes and keeps, for ``oddsflow topology``."""
    return FeaturesTask(settings).describe()
