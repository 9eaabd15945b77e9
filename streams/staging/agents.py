"""The staging agents (faust): a thin adapter around the pure processor and de-duplicator.

Topology:  raw.odds.*  →  normalize  →  <app>-staging-normalized (keyed by game id)
           →  dedupe (changelogged table)  →  staging.odds_lines | staging.betting_splits |
           staging.games;  refusals  →  dlq.staging.
The repartition by game id puts every record of one game on one partition, so the de-duplication
table is co-partitioned with its input and several workers can share the work.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import faust

from oddsflow.settings import Settings
from oddsflow.topics import RAW_SOURCES, dlq_topic, raw_topic, topic_name
from schemas.codec import default_codec
from streams.staging.dedupe import Deduplicator
from streams.staging.processor import GAME, LINE, SPLIT, Origin, StagingProcessor

log = logging.getLogger("oddsflow.staging")

OUTPUTS = {LINE: "staging.odds_lines", SPLIT: "staging.betting_splits", GAME: "staging.games"}


class StagingCounters:
    """Per source: raw records in, dead-lettered whole; records promoted or de-duplicated."""

    def __init__(self) -> None:
        self.raw_in: Counter[str] = Counter()
        self.raw_dead: Counter[str] = Counter()
        self.parts_dead: Counter[str] = Counter()
        self.records_in: Counter[str] = Counter()
        self.promoted: Counter[str] = Counter()
        self.deduplicated: Counter[str] = Counter()


def register(app: faust.App, settings: Settings) -> StagingCounters:
    """Add the staging agents to ``app``; returns their live counters."""
    t = lambda logical: topic_name(settings, logical)  # noqa: E731
    raw = app.topic(*(t(raw_topic(s)) for s in RAW_SOURCES))
    normalized = app.topic(
        f"{app.conf.id}-staging-normalized", partitions=settings.kafka.partitions, internal=True
    )
    outputs = {schema: app.topic(t(name)) for schema, name in OUTPUTS.items()}
    dlq = app.topic(t(dlq_topic("staging")))
    seen = app.Table("staging-dedupe", partitions=settings.kafka.partitions)
    tolerance = timedelta(minutes=settings.features.allowed_lateness_minutes)
    processor = StagingProcessor(future_tolerance=tolerance)
    counters = StagingCounters()
    registry = default_codec().registry
    decode = default_codec().decode

    @app.agent(raw, name="staging-normalize")
    async def normalize(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            origin = Origin(msg.topic, msg.partition, msg.offset, msg.key)
            result = processor.process(origin, event.value)
            counters.raw_in[result.source] += 1
            if result.whole_record_failed:
                counters.raw_dead[result.source] += 1
            else:
                counters.parts_dead[result.source] += len(result.dead)
            for _schema, key, value in result.records:
                await normalized.send(key=key, value=value)
            for dead in result.dead:
                await dlq.send(key=msg.key, value=dead)

    dedupe_store = Deduplicator(seen)

    @app.agent(normalized, name="staging-dedupe")
    async def dedupe(stream: faust.StreamT) -> None:
        async for event in stream.events():
            schema = registry.by_fingerprint[bytes(event.value[2:10])].name
            record = decode(event.value)
            counters.records_in[record["source"]] += 1
            if dedupe_store.check(schema, record).emit:
                counters.promoted[record["source"]] += 1
                await outputs[schema].send(key=event.key, value=event.value)
            else:
                counters.deduplicated[record["source"]] += 1

    return counters
