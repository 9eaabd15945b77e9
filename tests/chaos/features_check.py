"""Was the tormented features worker exact on the input it was actually given?

The table comparison judges the whole pipeline: when staging's output differs between the two
runs, every curated table differs too, and the features worker's own exactness cannot be read
from it. This check reads the chaos run's staging topics as they are (duplicates and all), runs
the feature engine in process on each partition (its three topics merged by event time, as the
worker's ``AlignedInputs`` does), and compares the distinct records with what the worker wrote to
the curated topics (repeats after a crash are identical records, so sets are compared).
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import topic_name
from schemas.codec import default_codec
from streams.features.partitioned import KINDS, PartitionFeatures, record_time_us
from streams.features.worker import INPUTS, OUTPUTS
from tests.helpers import curated_table

Records = dict[str, dict[int, list[bytes]]]  # catalog topic -> partition -> values in order


def read_topics(settings: Settings, topics: list[str]) -> Records:
    """Every committed record of ``topics`` (drained: nobody writes them any more), per
    partition in offset order; done after three quiet seconds."""
    names = {topic_name(settings, t): t for t in topics}
    c = Consumer(consumer_config(settings, f"chaos-check-{uuid.uuid4().hex[:8]}"))
    out: Records = {t: defaultdict(list) for t in topics}
    try:
        assign = [
            TopicPartition(name, p, OFFSET_BEGINNING)
            for name in names
            for p in c.list_topics(name, timeout=10).topics[name].partitions
        ]
        c.assign(assign)
        quiet = 0
        while quiet < 3:
            msgs = c.consume(10_000, timeout=1.0)
            quiet = 0 if msgs else quiet + 1
            for msg in msgs:
                if msg.error() is None:
                    out[names[msg.topic()]][msg.partition()].append(msg.value())
    finally:
        c.close()
    return out


def check(settings: Settings) -> dict[str, tuple[int, int, int]]:
    """Per curated topic: (rows expected, rows written, differing) of the tables the records
    make (the last record per key, withdrawn keys removed)."""
    decode = default_codec().decode
    staged = read_topics(settings, list(INPUTS))
    written = read_topics(settings, list(OUTPUTS))
    expected: dict[str, set[str]] = {t: set() for t in OUTPUTS}
    partitions = {p for per in staged.values() for p in per}
    for p in sorted(partitions):
        pf = PartitionFeatures(settings.features, p)
        streams = []
        for topic, kind in INPUTS.items():
            rank = KINDS.index(kind)
            recs = [decode(v) for v in staged[topic].get(p, [])]
            streams.append([(record_time_us(kind, r), rank, kind, r) for r in recs])
        merged = heapq.merge(*streams, key=lambda e: (e[0], e[1]))
        out = pf.feed((kind, rec) for _, _, kind, rec in merged)
        for topic in OUTPUTS:
            expected[topic] |= {
                _canon(r) for r in curated_table(topic, [r for t, r in out if t == topic])
            }
    result = {}
    for topic in OUTPUTS:  # the tables: corrections and withdrawals applied
        records = [decode(v) for vs in written[topic].values() for v in vs]
        got = {_canon(r) for r in curated_table(topic, records)}
        want = expected[topic]
        result[topic] = (len(want), len(got), len(want ^ got))
    return result


def _canon(rec: dict[str, Any]) -> str:
    return repr(sorted(rec.items()))
