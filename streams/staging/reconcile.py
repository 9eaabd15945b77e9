"""Reconciliation of the staging zone: where every raw record went, per source.

Accounting (DESIGN.md, "Staging: reconciliation"). The normalize agent splits one raw record into
n parts (staged candidates: lines, splits, games; and dead letters: a whole-record failure is one
part, a rejected book or side is one part each) and stamps every part with its raw origin and
``i/n``. The dedupe agent stamps every promoted record with the repartition offset of its
candidate. From the topics alone, then:

- record level: ``parts = promoted + deduplicated + dead_lettered`` (a candidate is promoted when
  a promoted record points at one of its deliveries, de-duplicated otherwise);
- raw level: each raw record is *promoted* (at least one part promoted), else *de-duplicated*
  (at least one staged part, none promoted), else *dead-lettered* (every part a dead letter), else
  *pending* (a staged part the dedupe agent has not committed a decision on yet: beyond its
  group's committed offset), else *unexplained* (some part missing, or nothing seen), and
  ``raw_in = promoted + deduplicated + dead_lettered + pending + unexplained``. The zone balances
  when ``pending == unexplained == 0``; a live pipeline has pending records, never unexplained
  ones once it has drained.

At-least-once redeliveries are counted once: parts are identified by (origin, i), not by offset.
The source is the raw topic's (``raw.odds.<source>``). Only what the topics still retain counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from oddsflow.kafka_config import consumer_config
from oddsflow.settings import Settings
from oddsflow.topic_reader import read_topic
from oddsflow.topics import RAW_SOURCES, dlq_topic, raw_topic, topic_name
from streams.staging.agents import ORIGIN_HEADER, OUTPUTS, PART_HEADER, normalized_topic
from streams.staging.dedupe import SOURCE_OFFSET_HEADER, parse_position
from streams.staging.processor import decode_batch, decode_bundle, is_batch, is_bundle

Origin = tuple[str, int, int]  # raw topic, partition, offset


@dataclass(slots=True)
class ReconRow:
    """One source's balance. Raw level first, then record (part) level."""

    source: str
    raw_in: int = 0
    raw_promoted: int = 0
    raw_deduplicated: int = 0
    raw_dead_lettered: int = 0
    raw_pending: int = 0
    raw_unexplained: int = 0
    parts: int = 0
    promoted: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0

    @property
    def balanced(self) -> bool:
        raw_sum = self.raw_promoted + self.raw_deduplicated + self.raw_dead_lettered
        parts_sum = self.promoted + self.deduplicated + self.dead_lettered
        settled = self.raw_pending == 0 and self.raw_unexplained == 0
        return settled and self.raw_in == raw_sum and self.parts == parts_sum

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "balanced": self.balanced}


def _decided_upto(settings: Settings) -> dict[int, int]:
    """Per repartition partition: the dedupe agent's committed offset (decisions before it)."""
    topic = normalized_topic(settings)
    group = f"{settings.kafka.topic_prefix}oddsflow-staging"  # the staging app's id
    consumer = Consumer(consumer_config(settings, group))
    try:
        md = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return {}
        tps = [TopicPartition(topic, p) for p in md.partitions]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def _header(msg: Message, name: str) -> str | None:
    for key, value in msg.headers() or ():
        if key == name and value is not None:
            return value.decode()
    return None


def _lineage(msg: Message) -> tuple[Origin, int, int] | None:
    """(origin, i, n) from a part's headers; None for records written without them."""
    origin, part = _header(msg, ORIGIN_HEADER), _header(msg, PART_HEADER)
    if origin is None or part is None:
        return None
    topic, partition, offset = origin.rsplit(":", 2)
    i, n = part.split("/")
    return (topic, int(partition), int(offset)), int(i), int(n)


def _staged_parts(msg: Message) -> list[tuple[Origin, int, int, int]]:
    """(origin, i, n, delivery index) of every staged part a repartition message holds.

    A batch message carries its bundles' lineage inside and its outputs name the part's running
    index in the message (offset:k); a bundle likewise names the part (offset:i); a one-part
    message (the per-event baseline agent's) carries it in headers and its outputs name the
    offset alone (index 0).
    """
    value = msg.value() or b""
    if is_batch(value):  # bundles of many raw records; outputs name the running index k
        out = []
        for k, _key, i, origin, n, _fact, _frame in decode_batch(value):
            topic, partition, offset = origin.rsplit(":", 2)
            out.append(((topic, int(partition), int(offset)), i, n, k))
        return out
    if is_bundle(value):
        origin, n, parts = decode_bundle(value)
        topic, partition, offset = origin.rsplit(":", 2)
        o = (topic, int(partition), int(offset))
        return [(o, i, n, i) for i, _frame in parts]  # outputs name the part index i
    lineage = _lineage(msg)
    if lineage is None:
        return []
    origin, i, n = lineage
    return [(origin, i, n, 0)]


def reconcile(settings: Settings, zone: str = "staging") -> list[dict[str, object]]:
    """Per source: raw in = promoted + de-duplicated + dead-lettered (+ unexplained), as rows."""
    if zone != "staging":
        raise ValueError(f"reconciliation is defined for the staging zone only, not {zone!r}")
    raw_topics = {topic_name(settings, raw_topic(s)): s for s in RAW_SOURCES}
    rows = {s: ReconRow(s) for s in RAW_SOURCES}
    raw: dict[Origin, str] = {}
    for topic, source in raw_topics.items():
        for msg in read_topic(settings, topic):
            raw[(topic, msg.partition(), msg.offset())] = source
            rows[source].raw_in += 1

    # decisions before the committed offsets are on the outputs (faust flushes, then commits):
    # read the offsets first, then the outputs
    decided = _decided_upto(settings)
    # a delivery: repartition (partition, offset, index in the bundle; 0 for a one-part message)
    promoted_deliveries: set[tuple[int, int, int]] = set()
    for name in OUTPUTS.values():
        for msg in read_topic(settings, topic_name(settings, name)):
            src = _header(msg, SOURCE_OFFSET_HEADER)
            if src is not None:
                promoted_deliveries.add((msg.partition(), *parse_position(src)))

    size: dict[Origin, int] = {}
    staged: dict[Origin, dict[int, bool | None]] = defaultdict(dict)  # promoted? None: undecided
    dead: dict[Origin, set[int]] = defaultdict(set)
    for msg in read_topic(settings, normalized_topic(settings)):
        p, off = msg.partition(), msg.offset()
        for origin, i, n, index in _staged_parts(msg):
            size[origin] = n
            if (p, off, index) in promoted_deliveries:
                staged[origin][i] = True
            elif staged[origin].get(i) is None:
                undecided = off >= decided.get(p, -1)
                staged[origin][i] = None if undecided else False
    for msg in read_topic(settings, topic_name(settings, dlq_topic("staging"))):
        lineage = _lineage(msg)
        if lineage is None:
            continue
        origin, i, n = lineage
        size[origin] = n
        dead[origin].add(i)

    for origin, source in raw.items():
        row = rows[source]
        parts, gone = staged.get(origin, {}), dead.get(origin, set())
        seen = len(parts) + len(gone)
        if origin not in size or seen != size[origin]:
            row.raw_unexplained += 1
            continue
        if any(v is None for v in parts.values()):
            row.raw_pending += 1
            continue
        n_promoted = sum(1 for v in parts.values() if v)
        row.parts += seen
        row.promoted += n_promoted
        row.deduplicated += len(parts) - n_promoted
        row.dead_lettered += len(gone)
        if n_promoted:
            row.raw_promoted += 1
        elif parts:
            row.raw_deduplicated += 1
        else:
            row.raw_dead_lettered += 1
    return [row.as_dict() for row in rows.values() if row.raw_in]
