"""The staging worker: raw records in, validated, normalized, de-duplicated staging records out.

The module reads top-down as its topology: this diagram, then the steps ``StagingTask`` declares
once (``self.steps``: the topics each step reads and writes, the state it keeps), then the steps'
handlers in the same order. ``process`` dispatches each turn's records through that declaration
and ``describe`` (what ``oddsflow topology`` prints) is read from it. One transaction per turn:

    raw.odds.<source> ──(record-timestamp order)──► normalize ──► <group>-repartition (by game)
                                                        └──► dlq.staging (refusals)
    <group>-repartition ──► dedupe (event time, per game) ──► staging.odds_lines
                                 │                            staging.betting_splits
                                 └──► dlq.staging (late)      staging.games
    decision counts of normalize and dedupe ──► <group>-quality-deltas (by source)
    <group>-quality-deltas ──► quality (totals per source and minute) ──► operational.quality

* normalize: the raw partitions a worker owns are read as one stream in record-timestamp order
  (``TimestampAligner``), so a backfill that drains one partition ahead of another does not turn
  skew into lateness. Each raw record is decoded, parsed, validated and scored by the pure
  ``StagingProcessor``; its staged parts go to the repartition topic keyed by game (one message
  per turn and partition, ``batches.py``), its refusals to ``dlq.staging``.
* dedupe: one game's parts all reach one partition; ``PartitionState`` decides each in event time
  (unchanged, changed, inserted in its place, or late beyond the allowed lateness). Promoted
  records go to the staging topic partition of their repartition partition; the state goes to a
  compacted changelog.
* quality: normalize and dedupe count their decisions per (source, minute); ``tick`` sends the
  counts as deltas (every ``quality_report_seconds``, and at a stop) to whoever owns the source's
  partition, which adds them up and publishes the totals (``quality_report.py``).

Exactly once: outputs, changelog entries and the consumed offsets of a turn commit together, so
a killed worker's successor repeats nothing and loses nothing (``streams/runtime``).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Message

from core.settings import Settings
from core.topics import PUBLISHED_HEADER, RAW_SOURCES, dlq_topic, raw_topic, topic_name
from schemas.codec import default_codec
from streams.runtime.align import TimestampAligner
from streams.runtime.changelog import latest
from streams.runtime.steps import Step, Steps
from streams.runtime.task import Entry, Output
from streams.staging.batches import BatchWriter, decode_batch, is_batch
from streams.staging.dedupe import (
    D_UNCHANGED,
    SOURCE_OFFSET_HEADER,
    PartitionState,
    decode_fact,
    position_header,
)
from streams.staging.processor import GAME, LINE, SPLIT, Origin, StagingProcessor
from streams.staging.quality_report import (
    SCHEMA,
    TOPIC,
    Counts,
    Tally,
    Windows,
    deltas_topic,
    report,
)

log = logging.getLogger("oddsflow.staging")

#: Headers on staged candidates' dead letters: the raw record they come from
#: ("topic:partition:offset") and which part of it they are ("i/n").
ORIGIN_HEADER = "oddsflow-origin"
PART_HEADER = "oddsflow-part"
#: On a dead letter written by the dedupe step: the part's fate ("late").
FATE_HEADER = "oddsflow-fate"

OUTPUTS = {LINE: "staging.odds_lines", SPLIT: "staging.betting_splits", GAME: "staging.games"}
#: An empty raw partition with records still on the broker holds the others back this long.
ALIGN_IDLE_SECONDS = 2.0


def staging_group(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}oddsflow-staging"


def normalized_topic(settings: Settings) -> str:
    """The internal repartition topic: staged parts keyed by game."""
    return f"{staging_group(settings)}-repartition"


def _published_ms(msg: Message) -> int | None:
    """When the collector published a raw record (its header; None: unknown, judge by now)."""
    for name, value in msg.headers() or ():
        if name == PUBLISHED_HEADER and value:
            return int(value)
    return None


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _span(us: int) -> str:
    s = us / 1e6
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.1f} s"


class StagingTask:
    """The staging role on the transaction loop (see the module docstring)."""

    name = "staging"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        t = lambda logical: topic_name(settings, logical)  # noqa: E731
        self.group = staging_group(settings)
        self.raw_topics = {t(raw_topic(s)): s for s in RAW_SOURCES}
        self.repartition = normalized_topic(settings)
        self.deltas = deltas_topic(settings)
        self.outputs = {schema: t(name) for schema, name in OUTPUTS.items()}
        self.dlq = t(dlq_topic("staging"))
        self.quality_topic = t(TOPIC)
        # The topology (the module docstring's diagram): source topics → step → output topics,
        # in the order a turn runs the steps. The deltas are the decision counts ``tick`` sends.
        self.steps = Steps(
            Step(
                "normalize",
                inputs=(*self.raw_topics,),
                outputs=(self.repartition, self.dlq, self.deltas),
                handler=self._normalize,
                every_turn=True,  # records the aligner held back leave as soon as they may
            ),
            Step(
                "dedupe",
                inputs=(self.repartition,),
                outputs=(*self.outputs.values(), self.dlq, self.deltas),
                handler=self._dedupe,
                state="dedupe",
            ),
            Step(
                "quality",
                inputs=(self.deltas,),
                outputs=(self.quality_topic,),
                handler=self._quality,
                state="quality",
            ),
        )
        self._changelog = {name: f"{self.group}-{name}-changelog" for name in self.steps.states()}
        self.lateness = timedelta(minutes=settings.features.allowed_lateness_minutes)
        gates = settings.pipeline.processing.quality_gates
        self.processor = StagingProcessor(
            future_tolerance=self.lateness,
            quality_threshold=settings.pipeline.quality_threshold if gates else None,
            max_payload_bytes=settings.pipeline.processing.max_payload_bytes,
        )
        codec = default_codec()
        self._schema_of = {
            fp: sv.name for fp, sv in codec.registry.by_fingerprint.items() if sv.name in OUTPUTS
        }
        self._encode_report = codec.encoder(SCHEMA)
        self.aligner = TimestampAligner(ALIGN_IDLE_SECONDS)
        self.writer = BatchWriter(settings.kafka.partitions)
        self.states: dict[int, PartitionState] = {}
        self.windows: dict[int, Windows] = {}
        self.counts = Counts()
        self.stats: Counter[str] = Counter()
        self._report_every = settings.pipeline.quality_report_seconds
        self._next_report: float | None = None
        self._source_of: dict[str, str] = {}

    # ------------------------------------------------------------------ wiring

    def input_topics(self) -> list[str]:
        return self.steps.inputs()

    def internal_topics(self) -> list[str]:
        return [self.repartition, self.deltas]

    def changelog_topics(self) -> dict[str, str]:
        return dict(self._changelog)

    def assign(self, partitions: set[int], state: dict[str, dict[int, list[Entry]]]) -> None:
        for p in partitions:
            ps = PartitionState(self.lateness)
            ps.restore(latest(state["dedupe"].get(p, [])))
            self.states[p] = ps
            w = Windows()
            w.restore(latest(state["quality"].get(p, [])))
            self.windows[p] = w
        self.aligner.assign((topic, p) for topic in self.raw_topics for p in partitions)

    def revoke(self, partitions: set[int]) -> None:
        for p in partitions:
            self.states.pop(p, None)
            self.windows.pop(p, None)
        self.aligner.revoke((topic, p) for topic in self.raw_topics for p in partitions)

    def counters(self) -> dict[str, Any]:
        return dict(self.stats)

    def describe(self) -> dict[str, Any]:
        """The declared steps, with the worker's own inputs, outputs and state tables."""
        return self.steps.describe(self.group, self._changelog, self.internal_topics())

    # ------------------------------------------------------------------ a turn

    def process(self, msgs: list[Message], now: float, out: Output) -> None:
        self.steps.dispatch(msgs, now, out)

    def tick(self, now: float, out: Output) -> None:
        if self.aligner.size:  # records held for a lagging partition whose wait ran out
            self._normalize_released(now, out)
        if self._next_report is None:
            self._next_report = now + self._report_every
        elif now >= self._next_report:
            self._next_report = now + self._report_every
            self._send_deltas(out)

    def flush(self, out: Output) -> None:
        self._send_deltas(out)

    # ------------------------------------------------------------------ normalize

    def _normalize(self, msgs: list[Message], now: float, out: Output) -> None:
        """The step: raw records into the aligner; what it releases is normalized (on every
        turn, with or without new raw records: held-back records may leave now)."""
        put = self.aligner.put
        for msg in msgs:
            put(msg)
        if self.aligner.size:
            self._normalize_released(now, out)

    def _normalize_released(self, now: float, out: Output) -> None:
        """Raw records in timestamp order → repartition messages and dead letters."""
        wall = datetime.now(UTC)
        process, writer, counts = self.processor.process, self.writer, self.counts
        n = 0
        for msg in self.aligner.release(now, lambda tp: out.behind(tp[0], tp[1])):
            topic, p, offset = msg.topic(), msg.partition(), msg.offset()
            origin_at = Origin(topic, p, offset, msg.key(), _published_ms(msg))
            result = process(origin_at, msg.value(), wall)
            origin = f"{topic}:{p}:{offset}"
            tally = counts.tally(result.source, wall)
            n += 1
            if result.records:
                writer.add(origin, result)
            elif getattr(result, "empty", False):
                writer.add_empty(origin)
                tally.empty += 1
            if result.dead:
                tally.dead_lettered += len(result.dead)
                origin_h = (ORIGIN_HEADER, origin.encode())
                parts = len(result.records) + len(result.dead)
                for j, dead in enumerate(result.dead, start=len(result.records)):
                    headers = [origin_h, (PART_HEADER, f"{j}/{parts}".encode())]
                    out.produce(self.dlq, dead, msg.key(), headers=headers)
        self.stats["raw"] += n
        for partition, value in writer.messages():
            out.produce(self.repartition, value, None, partition)
        for (topic, p), nxt in self.aligner.committable().items():
            out.consumed(topic, p, nxt)

    # ------------------------------------------------------------------ dedupe

    def _source(self, origin: str) -> str:
        """The source of a raw origin "prefix.raw.odds.<source>:p:o" (cached per topic)."""
        topic = origin.rsplit(":", 2)[0]
        src = self._source_of.get(topic)
        if src is None:
            src = self._source_of[topic] = topic.rsplit(".", 1)[-1]
        return src

    def _dedupe(self, msgs: list[Message], now: float, out: Output) -> None:
        """The step: repartition messages → promoted records, late dead letters, changelog
        entries.

        The hot path: one decision per staged candidate, most of them unchanged, so nothing is
        formatted, decoded or looked up for a candidate unless it is emitted."""
        wall = datetime.now(UTC)
        schema_of, outputs, produce, tally_of = (
            self._schema_of,
            self.outputs,
            out.produce,
            (self.counts.tally),
        )
        touched: set[int] = set()
        promoted = unchanged = late = 0
        for msg in msgs:
            p, offset = msg.partition(), msg.offset()
            value = msg.value()
            out.consumed(msg.topic(), p, offset + 1)
            state = self.states.get(p)
            if state is None or not value or not is_batch(value):
                self.stats["skipped"] += 1
                continue
            touched.add(p)
            decide = state.decide
            last_origin, tally = "", None
            for k, key, i, origin, n, fact_bytes, frame in decode_batch(value):
                if origin != last_origin:  # a bundle's parts share their origin
                    last_origin, tally = origin, tally_of(self._source(origin), wall)
                assert tally is not None
                fact = decode_fact(fact_bytes)
                d = decide(fact, frame, offset, k)
                if d is D_UNCHANGED:
                    unchanged += 1
                    tally.deduplicated += 1
                elif d.emit:
                    promoted += 1
                    tally.promoted += 1
                    topic = outputs[schema_of[frame[2:10]]]
                    position = position_header(offset, k)
                    produce(topic, frame, key, p, [(SOURCE_OFFSET_HEADER, position)])
                    if d.revive is not None:  # a suppressed re-observation is a change now
                        _at, again, where = d.revive
                        produce(topic, again, key, p, [(SOURCE_OFFSET_HEADER, where.encode())])
                        self.stats["revived"] += 1
                else:
                    late += 1
                    tally.late += 1
                    self._late(out, origin, i, n, (p, offset, k), key, fact, d.late_by_us, wall)
        for p in touched:
            out.changelog(self._changelog_topic("dedupe"), p, self.states[p].take_changes())
        self.stats["promoted"] += promoted
        self.stats["unchanged"] += unchanged
        self.stats["late"] += late

    def _changelog_topic(self, name: str) -> str:
        return self._changelog[name]

    def _late(
        self,
        out: Output,
        origin: str,
        i: int,
        n: int,
        position: tuple[int, int, int],
        key: bytes,
        fact: tuple[Any, ...],
        late_by_us: int,
        wall: datetime,
    ) -> None:
        """A dead letter of class ``late`` that points at the part's raw record, on the
        dead-letter partition of its candidate's repartition partition (reconciliation)."""
        ident, at = fact[0], fact[1]
        game = ident.split("|", 2)[1]
        reason = (
            f"{ident.replace('|', ' ')} observed at {_iso(at)} arrived {_span(late_by_us)} after"
            f" a newer observation of game {game} ({_iso(at + late_by_us)}); allowed lateness"
            f" {_span(int(self.lateness.total_seconds() * 1e6))}"
        )
        topic, partition, raw_offset = origin.rsplit(":", 2)
        dead = self.processor.dead_letter(
            Origin(topic, int(partition), int(raw_offset), key), None, "late", reason, wall, i
        )
        headers = [
            (ORIGIN_HEADER, origin.encode()),
            (PART_HEADER, f"{i}/{n}".encode()),
            (SOURCE_OFFSET_HEADER, position_header(position[1], position[2])),
            (FATE_HEADER, b"late"),
        ]
        out.produce(self.dlq, dead, key, position[0], headers=headers)

    # ------------------------------------------------------------------ quality

    def _send_deltas(self, out: Output) -> None:
        """The counts normalize and dedupe took since the last call → the deltas topic."""
        for source, window, tally in self.counts.take():
            out.produce(self.deltas, tally.encode(source, window), source.encode())

    def _quality(self, msgs: list[Message], now: float, out: Output) -> None:
        """The step: deltas of the sources this worker owns → totals, changelog entries."""
        touched: set[int] = set()
        for msg in msgs:
            p = msg.partition()
            out.consumed(msg.topic(), p, msg.offset() + 1)
            windows = self.windows.get(p)
            value = msg.value()
            if windows is None or not value:
                continue
            source, window, delta = Tally.decode(value)
            windows.add(source, window, delta)
            touched.add(p)
        wall = datetime.now(UTC)
        for p in sorted(touched):
            windows = self.windows[p]
            for source, window, tally in windows.due():
                value = self._encode_report(report(source, window, tally, wall))
                out.produce(self.quality_topic, value, source.encode())
            out.changelog(self._changelog_topic("quality"), p, windows.take_changes())


def describe(settings: Settings) -> dict[str, Any]:
    """What the worker consumes, writes and keeps, for ``oddsflow topology``."""
    return StagingTask(settings).describe()
