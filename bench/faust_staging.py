"""The faust per-event staging pipeline: the benchmark's baseline, not the product.

What the staging worker was in its first form: a faust ``normalize`` agent that sends every staged
part as its own repartition message (one awaited faust send each) and a ``dedupe`` agent that
decides each part and sends each promoted record with an awaited faust send. Kept so every
benchmark run shows what the transaction loop and the batched repartition buy
(``python -m bench.faust_staging`` with the settings in the environment).
"""

from __future__ import annotations

import logging

import faust

from core.settings import Settings, get_settings
from core.topics import RAW_SOURCES, dlq_topic, raw_topic, topic_name
from schemas.codec import default_codec
from streams.staging.dedupe import Deduplicator
from streams.staging.processor import Origin, StagingProcessor
from streams.staging.worker import OUTPUTS

log = logging.getLogger("oddsflow.bench.faust_staging")


def normalized_topic(settings: Settings) -> str:
    """The baseline's repartition topic (named as faust names this app's internal topics)."""
    return f"{settings.kafka.topic_prefix}oddsflow-faust-staging-staging-normalized"


def register(app: faust.App, settings: Settings) -> None:
    """The two per-event agents."""
    t = lambda logical: topic_name(settings, logical)  # noqa: E731
    raw = app.topic(*(t(raw_topic(s)) for s in RAW_SOURCES))
    normalized = app.topic(
        normalized_topic(settings), partitions=settings.kafka.partitions, internal=True
    )
    outputs = {schema: app.topic(t(name)) for schema, name in OUTPUTS.items()}
    dlq = app.topic(t(dlq_topic("staging")))
    processor = StagingProcessor(
        max_payload_bytes=settings.pipeline.processing.max_payload_bytes,
    )
    registry = default_codec().registry
    decode = default_codec().decode
    dedupe = Deduplicator({})

    @app.agent(raw, name="staging-normalize")
    async def normalize_per_event(stream: faust.StreamT) -> None:
        """One awaited faust send per staged part."""
        async for event in stream.events():
            msg = event.message
            result = processor.process(
                Origin(msg.topic, msg.partition, msg.offset, msg.key), event.value
            )
            for _schema, key, value in result.records:
                await normalized.send(key=key, value=value)
            for dead in result.dead:
                await dlq.send(key=msg.key, value=dead)

    @app.agent(normalized, name="staging-dedupe")
    async def dedupe_per_event(stream: faust.StreamT) -> None:
        """One repartition record per event, one awaited faust send per output."""
        async for event in stream.events():
            schema = registry.by_fingerprint[bytes(event.value[2:10])].name
            if dedupe.check(schema, decode(event.value)).emit:
                await outputs[schema].send(
                    key=event.key, value=event.value, partition=event.message.partition
                )


def main() -> None:
    from faust.worker import Worker

    from bench.faust_app import create_app

    settings = get_settings()
    app = create_app(settings, "faust-staging")
    register(app, settings)
    Worker(app, loglevel="WARN", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
