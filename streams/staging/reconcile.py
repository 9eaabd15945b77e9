"""Reconciliation of the staging zone: where every raw record went, per source.

Accounting (DESIGN.md, "Staging: reconciliation"). The normalize step splits one raw record into
n *parts*: staged candidates (lines, splits, games) and dead letters (a whole-record failure is
one part, a refused book or side one each). Candidates travel in repartition messages with their
origin and ``i/n``; dead letters carry the same in headers. The dedupe step gives each candidate
exactly one fate and says so on a topic: a promoted record carries its candidate's repartition
position, a late one is a dead letter with that position and the fate ``late``. From the topics
alone, then:

- part level: ``parts = promoted + unchanged + late + dead_lettered``, each named: *promoted*
  (an output points at it), *late* (a late dead letter points at it), *unchanged* (decided, below
  the dedupe step's committed offset, and neither), *dead-lettered* (refused by normalize);
- raw level: each raw record is *promoted* (a part promoted), else *unchanged* (a staged part,
  none promoted, not all late), else *late* (every staged part late), else *dead-lettered* (every
  part a dead letter), else *empty* (it held nothing to stage: a slate without games), else
  *pending* (a candidate beyond the committed decisions), else *unexplained* (a part missing,
  or nothing seen): ``raw_in = promoted + unchanged + late + dead_lettered + empty + pending +
  unexplained``. A drained pipeline balances with pending = unexplained = 0.

Everything is read as committed (read_committed): the staging worker's transactions put a
decision and its outputs on the topics together. The source is the raw topic's
(``raw.odds.<source>``). Only what the topics still retain counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from core.kafka_config import consumer_config
from core.reader import read_topic
from core.settings import Settings
from core.topics import RAW_SOURCES, dlq_topic, raw_topic, topic_name
from streams.staging.batches import decode_batch, is_batch
from streams.staging.dedupe import SOURCE_OFFSET_HEADER, parse_position
from streams.staging.worker import (
    FATE_HEADER,
    ORIGIN_HEADER,
    OUTPUTS,
    PART_HEADER,
    normalized_topic,
    staging_group,
)

Origin = tuple[str, int, int]  # raw topic, partition, offset
#: A candidate's fate while it is read: True promoted, "late", False unchanged, None undecided.
Fate = bool | str | None


@dataclass(slots=True)
class ReconRow:
    """One source's balance. Raw level first, then part level."""

    source: str
    raw_in: int = 0
    raw_promoted: int = 0
    raw_unchanged: int = 0
    raw_late: int = 0
    raw_dead_lettered: int = 0
    raw_empty: int = 0
    raw_pending: int = 0
    raw_unexplained: int = 0
    parts: int = 0
    promoted: int = 0
    unchanged: int = 0
    late: int = 0
    dead_lettered: int = 0

    @property
    def balanced(self) -> bool:
        raw_sum = (
            self.raw_promoted + self.raw_unchanged + self.raw_late + self.raw_dead_lettered
            + self.raw_empty
        )  # fmt: skip
        parts_sum = self.promoted + self.unchanged + self.late + self.dead_lettered
        settled = self.raw_pending == 0 and self.raw_unexplained == 0
        return settled and self.raw_in == raw_sum and self.parts == parts_sum

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "balanced": self.balanced}


def _decided_upto(settings: Settings) -> dict[int, int]:
    """Per repartition partition: the dedupe step's committed offset (decisions before it)."""
    topic = normalized_topic(settings)
    consumer = Consumer(consumer_config(settings, staging_group(settings)))
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


def _origin(text: str) -> Origin:
    topic, partition, offset = text.rsplit(":", 2)
    return topic, int(partition), int(offset)


def _lineage(msg: Message) -> tuple[Origin, int, int] | None:
    """(origin, i, n) from a dead letter's headers; None for records written without them."""
    origin, part = _header(msg, ORIGIN_HEADER), _header(msg, PART_HEADER)
    if origin is None or part is None:
        return None
    i, n = part.split("/")
    return _origin(origin), int(i), int(n)


class _Seen:
    """What the topics say of each raw origin: its size, its candidates' fates, its refusals."""

    def __init__(self) -> None:
        self.size: dict[Origin, int] = {}
        self.staged: dict[Origin, dict[int, Fate]] = defaultdict(dict)
        self.dead: dict[Origin, set[int]] = defaultdict(set)
        self.empty: set[Origin] = set()

    def read(self, settings: Settings) -> None:
        # decisions before the committed offsets are on the outputs (one transaction): read the
        # offsets first, then the outputs
        decided = _decided_upto(settings)
        promoted: set[tuple[int, int, int]] = set()  # (repartition partition, offset, k)
        for name in OUTPUTS.values():
            for msg in read_topic(settings, topic_name(settings, name)):
                src = _header(msg, SOURCE_OFFSET_HEADER)
                if src is not None:
                    promoted.add((msg.partition(), *parse_position(src)))
        late: set[tuple[int, int, int]] = set()
        for msg in read_topic(settings, topic_name(settings, dlq_topic("staging"))):
            lineage = _lineage(msg)
            if lineage is None:
                continue
            origin, i, n = lineage
            src = _header(msg, SOURCE_OFFSET_HEADER)
            if _header(msg, FATE_HEADER) == "late" and src is not None:
                late.add((msg.partition(), *parse_position(src)))  # on its candidate's partition
                continue
            self.size[origin] = n
            self.dead[origin].add(i)
        self._read_candidates(settings, decided, promoted, late)

    def _read_candidates(
        self,
        settings: Settings,
        decided: dict[int, int],
        promoted: set[tuple[int, int, int]],
        late: set[tuple[int, int, int]],
    ) -> None:
        for msg in read_topic(settings, normalized_topic(settings)):
            value = msg.value() or b""
            if not is_batch(value):
                continue
            p, off = msg.partition(), msg.offset()
            empties: list[str] = []
            for k, _key, i, origin_text, n, _fact, _frame in decode_batch(value, empties):
                origin = _origin(origin_text)
                self.size[origin] = n
                fates = self.staged[origin]
                if (p, off, k) in promoted:
                    fates[i] = True
                elif (p, off, k) in late:
                    fates[i] = "late"
                elif fates.get(i) is None:
                    fates[i] = None if off >= decided.get(p, -1) else False
            for origin_text in empties:
                origin = _origin(origin_text)
                self.size[origin] = 0
                self.empty.add(origin)


def reconcile(settings: Settings, zone: str = "staging") -> list[dict[str, object]]:
    """Per source: raw in = promoted + unchanged + late + dead-lettered + empty (+ pending and
    unexplained while not drained), as rows."""
    if zone != "staging":
        raise ValueError(f"reconciliation is defined for the staging zone only, not {zone!r}")
    raw_topics = {topic_name(settings, raw_topic(s)): s for s in RAW_SOURCES}
    rows = {s: ReconRow(s) for s in RAW_SOURCES}
    raw: dict[Origin, str] = {}
    for topic, source in raw_topics.items():
        for msg in read_topic(settings, topic):
            raw[(topic, msg.partition(), msg.offset())] = source
            rows[source].raw_in += 1
    seen = _Seen()
    seen.read(settings)
    for origin, source in raw.items():
        _settle(rows[source], origin, seen)
    return [row.as_dict() for row in rows.values() if row.raw_in]


def _settle(row: ReconRow, origin: Origin, seen: _Seen) -> None:
    """Count one raw record's fate and its parts' into ``row``."""
    if origin in seen.empty and not seen.staged.get(origin) and not seen.dead.get(origin):
        row.raw_empty += 1
        return
    fates, gone = seen.staged.get(origin, {}), seen.dead.get(origin, set())
    parts = len(fates) + len(gone)
    if origin not in seen.size or parts != seen.size[origin]:
        row.raw_unexplained += 1
        return
    if any(v is None for v in fates.values()):
        row.raw_pending += 1
        return
    promoted = sum(1 for v in fates.values() if v is True)
    late = sum(1 for v in fates.values() if v == "late")
    row.parts += parts
    row.promoted += promoted
    row.late += late
    row.unchanged += len(fates) - promoted - late
    row.dead_lettered += len(gone)
    if promoted:
        row.raw_promoted += 1
    elif len(fates) > late:
        row.raw_unchanged += 1
    elif late:
        row.raw_late += 1
    else:
        row.raw_dead_lettered += 1
