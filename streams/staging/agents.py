"""The staging agents (faust): a thin adapter around the pure processor and de-duplicator.

Topology:  raw.odds.*  →  normalize  →  <app>-staging-normalized (partitioned by game id)
           →  dedupe  →  staging.odds_lines | staging.betting_splits | staging.games;
           refusals  →  dlq.staging.
The repartition by game id puts every record of one game on one partition; normalize writes one
message per (input batch, partition) holding the parts and their de-dup facts (processor.py,
"batch bundles"), so dedupe decides without decoding and faust handles few messages. The dedupe
agent writes each output to the partition number its input came from, and derives the de-dup
state of a partition, when it first sees it after an assignment, from those output partitions
(see DESIGN.md, "Staging"): at-least-once processing then neither loses nor repeats a promoted
record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import faust
from faust.types import TP

from oddsflow.settings import Settings
from oddsflow.topics import RAW_SOURCES, dlq_topic, raw_topic, topic_name
from schemas.codec import default_codec
from streams.fatal import exit_for_restart
from streams.staging.dedupe import (
    REPLAYED,
    SOURCE_OFFSET_HEADER,
    PartitionState,
    decode_fact,
    position_header,
)
from streams.staging.outputs import PromotedWriter, rebuild_partition
from streams.staging.processor import (
    GAME,
    LINE,
    SPLIT,
    BatchWriter,
    Origin,
    StagingProcessor,
    decode_batch,
    decode_bundle,
    is_batch,
    is_bundle,
)

log = logging.getLogger("oddsflow.staging")

#: Headers the normalize agent puts on staged candidates and dead letters: the raw record they
#: come from ("topic:partition:offset") and which part of it they are ("i/n").
ORIGIN_HEADER = "oddsflow-origin"
PART_HEADER = "oddsflow-part"

OUTPUTS = {LINE: "staging.odds_lines", SPLIT: "staging.betting_splits", GAME: "staging.games"}

#: ``baseline`` selects the naive per-event agents (one faust send per staged part, awaited; one
#: repartition message per part), kept so the benchmark can show what batching buys.
AGENT_MODE_ENV = "ODDSFLOW_PIPELINE__STAGING_AGENT"  # [pipeline] staging_agent

#: Batch size and wait of the batched agents: large enough to amortise faust's per-batch cost,
#: short enough that a quiet feed is not held back (and SIGTERM stops promptly).
BATCH = 1000
WITHIN = 0.05


class StagingCounters:
    """Per source: raw records in, dead-lettered whole; records promoted or de-duplicated.

    ``quality_passed`` / ``quality_quarantined``: staged records that passed the quality gate and
    those it held back (their pass rate is passed / (passed + quarantined); with the gate off
    every staged record counts as passed). Quarantined records are also in ``parts_dead``.
    """

    def __init__(self) -> None:
        self.quality_passed: Counter[str] = Counter()
        self.quality_quarantined: Counter[str] = Counter()
        self.raw_in: Counter[str] = Counter()
        self.raw_dead: Counter[str] = Counter()
        self.parts_dead: Counter[str] = Counter()
        self.records_in: Counter[str] = Counter()
        self.promoted: Counter[str] = Counter()
        self.deduplicated: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()


def quiet_producer_log() -> None:
    """aiokafka builds a debug record per produced message when the root level lets it through
    (4-7% of the worker in a profile; never shown). Called once the worker set up logging."""
    producer_log = logging.getLogger("aiokafka.producer.producer")
    if producer_log.getEffectiveLevel() < logging.INFO:
        producer_log.setLevel(logging.INFO)


def normalized_topic(settings: Settings) -> str:
    """The internal repartition topic (named as faust names internal topics of this app)."""
    return f"{settings.kafka.topic_prefix}oddsflow-staging-staging-normalized"


def register(app: faust.App, settings: Settings) -> StagingCounters:
    """Add the staging agents to ``app``; returns their live counters."""
    t = lambda logical: topic_name(settings, logical)  # noqa: E731
    raw = app.topic(*(t(raw_topic(s)) for s in RAW_SOURCES))
    normalized = app.topic(
        normalized_topic(settings), partitions=settings.kafka.partitions, internal=True
    )
    outputs = {schema: app.topic(t(name)) for schema, name in OUTPUTS.items()}
    dlq = app.topic(t(dlq_topic("staging")))
    tolerance = timedelta(minutes=settings.features.allowed_lateness_minutes)
    gates = settings.pipeline.processing.quality_gates
    processor = StagingProcessor(
        future_tolerance=tolerance,
        quality_threshold=settings.pipeline.quality_threshold if gates else None,
        max_payload_bytes=settings.pipeline.processing.max_payload_bytes,
    )
    counters = StagingCounters()
    registry = default_codec().registry
    decode = default_codec().decode
    baseline = settings.pipeline.staging_agent == "baseline"

    output_names = {schema: t(name) for schema, name in OUTPUTS.items()}
    normalized_name = normalized.get_topic_name()
    dlq_name = dlq.get_topic_name()
    states: dict[int, PartitionState] = {}

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """Another worker may write a revoked partition: re-read it if it comes back."""
        for tp in revoked:
            if tp.topic == normalized_name:
                states.pop(tp.partition, None)

    writers: list[PromotedWriter] = []  # the dedupe agent's, made in the worker process

    async def state_of(partition: int) -> PartitionState:
        state = states.get(partition)
        if state is None:
            if writers:  # what this worker promoted must be on the outputs it reads back
                await writers[0].flush()
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            state, read = await loop.run_in_executor(
                None, rebuild_partition, settings, output_names, partition
            )
            states[partition] = state
            log.info(
                "staging-dedupe: partition %d rebuilt from %d promoted records "
                "(%d identities, decided up to %s) in %.2fs",
                partition, read, len(state), state.decided_upto, time.monotonic() - started,
            )  # fmt: skip
        return state

    def account(result: Any) -> None:
        counters.raw_in[result.source] += 1
        counters.quality_passed[result.source] += result.passed
        if result.quarantined:
            counters.quality_quarantined[result.source] += result.quarantined
        if result.whole_record_failed:
            counters.raw_dead[result.source] += 1
        else:
            counters.parts_dead[result.source] += len(result.dead)

    def decide(
        state: PartitionState, schema: str, record: dict[str, Any], offset: int, index: int
    ) -> bool:
        source = record["source"]
        counters.records_in[source] += 1
        verdict = state.check(schema, record, offset, index)
        if verdict.emit:
            counters.promoted[source] += 1
        elif verdict.reason == "replayed":
            counters.replayed[source] += 1
        else:
            counters.deduplicated[source] += 1
        return verdict.emit

    if baseline:

        @app.agent(raw, name="staging-normalize")
        async def normalize_per_event(stream: faust.StreamT) -> None:
            """Baseline: one awaited faust send per staged part, lineage in headers."""
            async for event in stream.events():
                msg = event.message
                result = processor.process(
                    Origin(msg.topic, msg.partition, msg.offset, msg.key), event.value
                )
                account(result)
                origin_h = (ORIGIN_HEADER, f"{msg.topic}:{msg.partition}:{msg.offset}".encode())
                n = len(result.records) + len(result.dead)
                for i, (_schema, key, value) in enumerate(result.records):
                    part = (PART_HEADER, f"{i}/{n}".encode())
                    await normalized.send(key=key, value=value, headers=[origin_h, part])
                for j, dead in enumerate(result.dead, start=len(result.records)):
                    part = (PART_HEADER, f"{j}/{n}".encode())
                    await dlq.send(key=msg.key, value=dead, headers=[origin_h, part])

        @app.agent(normalized, name="staging-dedupe")
        async def dedupe_per_event(stream: faust.StreamT) -> None:
            """Baseline: one repartition record per event, one awaited faust send per output."""
            async for event in stream.events():
                msg = event.message
                state = await state_of(msg.partition)
                schema = registry.by_fingerprint[bytes(event.value[2:10])].name
                if decide(state, schema, decode(event.value), msg.offset, 0):
                    await outputs[schema].send(
                        key=event.key,
                        value=event.value,
                        partition=msg.partition,
                        headers=[(SOURCE_OFFSET_HEADER, str(msg.offset).encode())],
                    )

        return counters

    @app.agent(raw, name="staging-normalize")
    async def normalize(stream: faust.StreamT) -> None:
        """Batches of raw records; one repartition message per (batch, partition).

        Sends are enqueued, not awaited one by one: take_events acks a batch's events only after
        this body returns, and faust's at-least-once commit flushes the producer before it
        commits, so a committed raw offset never passes an output that is not on the broker.
        """
        send = app.producer.send  # enqueues; faust flushes the producer before committing
        writer = BatchWriter(settings.kafka.partitions)
        quiet_producer_log()
        try:
            await _normalize_batches(stream, send, writer)
        except Exception:
            exit_for_restart(log, "staging", "the normalize agent")

    async def _normalize_batches(stream: faust.StreamT, send: Any, writer: BatchWriter) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            for event in events:
                msg = event.message
                result = processor.process(
                    Origin(msg.topic, msg.partition, msg.offset, msg.key), event.value
                )
                account(result)
                origin = f"{msg.topic}:{msg.partition}:{msg.offset}"
                if result.records:
                    writer.add(origin, result)
                if result.dead:
                    origin_h = (ORIGIN_HEADER, origin.encode())
                    n = len(result.records) + len(result.dead)
                    for j, dead in enumerate(result.dead, start=len(result.records)):
                        part = (PART_HEADER, f"{j}/{n}".encode())
                        await send(dlq_name, msg.key, dead, None, None, [origin_h, part])
            for partition, value in writer.messages():
                await send(normalized_name, None, value, partition, None, None)

    by_fingerprint = registry.by_fingerprint
    source_of: dict[str, str] = {}

    def source(origin: str) -> str:
        """The source of a raw origin "prefix.raw.odds.<source>:p:o" (cached per topic)."""
        topic = origin.rsplit(":", 2)[0]
        src = source_of.get(topic)
        if src is None:
            src = source_of[topic] = topic.rsplit(".", 1)[-1]
        return src

    @app.agent(normalized, name="staging-dedupe")
    async def dedupe(stream: faust.StreamT) -> None:
        """Batches of repartition messages; each promoted part goes to its input's partition.

        Each output carries its repartition position (offset:k, k the part's running index in
        the message): parts are decided in k order, so the rebuilt state tells replayed parts
        from new ones even when a crash cut a message's outputs short (DESIGN.md, "Staging").
        """
        writer = PromotedWriter(settings)  # one producer for every output: one order
        writers[:] = [writer]
        try:
            await _dedupe_batches(stream, writer)
        except Exception:
            exit_for_restart(log, "staging", "the dedupe agent")

    async def _dedupe_batches(stream: faust.StreamT, writer: PromotedWriter) -> None:
        produce = writer.produce_at
        promoted, deduplicated, replayed, records_in = (
            counters.promoted, counters.deduplicated, counters.replayed, counters.records_in,
        )  # fmt: skip
        async for events in stream.take_events(BATCH, within=WITHIN):
            for event in events:
                msg = event.message
                partition, offset = msg.partition, msg.offset
                state = states.get(partition) or await state_of(partition)
                value = event.value
                if not is_batch(value):  # a bundle or one part (the baseline agents' format)
                    parts = decode_bundle(value)[2] if is_bundle(value) else [(0, value)]
                    for index, frame in parts:
                        schema = by_fingerprint[bytes(frame[2:10])].name
                        if decide(state, schema, decode(frame), offset, index):
                            position = position_header(offset, index)
                            produce(output_names[schema], event.key, frame, partition, position)
                    continue
                check = state.check_fact
                for k, key, _i, origin, _n, fact, frame in decode_batch(value):
                    schema = by_fingerprint[frame[2:10]].name
                    src = source(origin)
                    records_in[src] += 1
                    verdict = check(schema, decode_fact(fact), offset, k)
                    if verdict.emit:
                        promoted[src] += 1
                        produce(
                            output_names[schema], key, frame, partition,
                            position_header(offset, k),
                        )  # fmt: skip
                    elif verdict is REPLAYED:
                        replayed[src] += 1
                    else:
                        deduplicated[src] += 1
            await writer.flush()  # durable before this batch is acked, so before it is committed

    return counters
