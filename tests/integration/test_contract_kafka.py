"""Issue 3's contract, through a real broker: a downstream subscriber needs only the .avsc file.

For every curated topic of the catalog, the project's codec writes a record to an isolated topic;
a plain confluent-kafka consumer (no oddsflow configuration) reads it back and fastavro decodes it
with the topic's ``.avsc`` file alone, skipping the 10-byte single-object header. The values must be
the ones the project wrote.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer

from core.admin import create_topics
from core.settings import Settings
from core.topics import CATALOG, Zone, topic_name
from schemas.codec import HEADER_LEN, MARKER, default_codec
from schemas.registry import AVRO_DIR
from tests.unit.test_codec_errors import CURATED

CURATED_TOPICS = tuple(s for s in CATALOG if s.zone is Zone.CURATED)


def avsc_of(schema_name: str) -> Path:
    """The schema file a subscriber would be handed: found by its namespace and name."""
    (path,) = [
        p
        for p in AVRO_DIR.glob("**/*.avsc")
        if "{namespace}.{name}".format(**json.loads(p.read_text())) == schema_name
    ]
    return path


def consume_all(settings: Settings, topics: list[str], want: int) -> dict[str, bytes]:
    """Plain confluent-kafka: only bootstrap servers, a group and where to start."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.topic_prefix}contract-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(topics)
    got: dict[str, bytes] = {}
    try:
        for _ in range(120):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            got[msg.topic()] = msg.value()
            if len(got) == want:
                break
    finally:
        consumer.close()
    return got


def test_every_curated_topic_decodes_with_fastavro_and_the_avsc_alone(settings: Settings) -> None:
    assert {s.schema for s in CURATED_TOPICS} == set(CURATED), "a curated topic has no sample"
    create_topics(settings, CURATED_TOPICS)
    codec = default_codec()
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    written: dict[str, dict[str, Any]] = {}
    for s in CURATED_TOPICS:
        name = topic_name(settings, s.name)
        record = CURATED[s.schema]
        producer.produce(name, key=b"k", value=codec.encode(s.schema, record))
        written[name] = record
    assert producer.flush(30) == 0

    frames = consume_all(settings, list(written), want=len(written))
    assert set(frames) == set(written)
    for s in CURATED_TOPICS:
        name = topic_name(settings, s.name)
        frame = frames[name]
        assert frame[:2] == MARKER
        with open(avsc_of(s.schema)) as fh:
            schema = fastavro.parse_schema(json.load(fh))
        body = io.BytesIO(frame[HEADER_LEN:])
        decoded = fastavro.schemaless_reader(body, schema)
        assert body.read() == b"", f"{name}: bytes left after the body"
        assert decoded == {"retracted": False, **written[name]}, name  # the default, written
