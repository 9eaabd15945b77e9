"""The repartition message: every staged part of a batch of raw records bound for one partition.

The staging task's normalize step writes ONE repartition message per (turn, partition): the
bundles of every (raw record, game) of the turn that go to that partition, each part with its
de-dup fact, so the dedupe step decides without decoding the record (most parts are unchanged).
Few, larger messages: a message per raw record cost more in Kafka overhead than the staging
logic itself. A part's position is (offset, k), k its running index in the message; parts are
decided in k order, and promoted records carry that position (reconciliation).

A raw record that held nothing to stage (an empty slate) travels as a bundle with no parts, so
the reconciliation sees it and counts it as empty, not missing.
"""

from __future__ import annotations

import struct

from aiokafka.partitioner import murmur2

from streams.staging.processor import StageResult

_HEAD = struct.Struct(">H")
_COUNTS = struct.Struct(">HH")

# # The batched normalize agent writes ONE repartition message per (input batch, partition): the
# bundles of every (raw record, game) of the batch that go to that partition, each part with its
# de-dup fact, so the dedupe agent decides without decoding. Fewer, larger messages: faust's
# per-message cost and aiokafka's 16 KB producer batches (one request in flight per broker)
# capped the worker when each bundle was a message. A part's position is (offset, k), k its
# running index in the message; parts are decided in k order, so the crash argument of DESIGN.md
# holds unchanged. Layout (big-endian): MAGIC | u32 bundles | bundles × (u16 len + key | u16 len +
# origin | u16 n | u16 count | count × (u16 i | u16 len + fact | u32 len + record)).

BATCH_MAGIC = b"OFB\x02"
_U32 = struct.Struct(">I")
_FACT = struct.Struct(">HH")
#: A batch message is cut at this size. Small enough that faust's stream buffer (up to
#: ``stream_buffer_maxsize`` = 4,096 messages, filled while dedupe works through a backlog) stays
#: bounded — 512 KB messages took the worker to ~1 GB after 1M records, 64 KB to ~150-290 MB — and
#: large enough that faust's per-message cost is a few µs per raw record (~36 per message).
BATCH_BYTES = 64 * 1024

#: A part of a batch message: (k, game key, i, origin, n, fact, encoded record).
BatchPart = tuple[int, bytes, int, str, int, bytes, bytes]


def is_batch(value: bytes) -> bool:
    return value[:4] == BATCH_MAGIC


class BatchWriter:
    """Collects (raw record, game) bundles per repartition partition into batch messages."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._open: dict[int, tuple[list[bytes], list[int]]] = {}  # p → (pieces, [bundles, size])
        self.done: list[tuple[int, bytes]] = []
        self._part_of: dict[bytes, int] = {}

    def partition(self, key: bytes) -> int:
        """The partition Kafka's default partitioner (murmur2) gives ``key``, as the outputs."""
        p = self._part_of.get(key)
        if p is None:
            if len(self._part_of) > 100_000:
                self._part_of.clear()
            p = self._part_of[key] = (murmur2(key) & 0x7FFFFFFF) % self.partitions
        return p

    def add(self, origin: str, result: StageResult) -> None:
        """Every staged part of ``result`` (part i of n as processed), grouped by game."""
        records, facts = result.records, result.facts
        n = len(records) + len(result.dead)
        o = origin.encode()
        keys = dict.fromkeys([key for _s, key, _v in records])
        for key in keys:
            if len(keys) == 1:
                indices: list[int] | range = range(len(records))
            else:
                indices = [i for i, r in enumerate(records) if r[1] == key]
            pieces = [
                _HEAD.pack(len(key)),
                key,
                _HEAD.pack(len(o)),
                o,
                _COUNTS.pack(n, len(indices)),
            ]
            size = 10 + len(key) + len(o)
            for i in indices:
                fact, value = facts[i], records[i][2]
                pieces += (_FACT.pack(i, len(fact)), fact, _U32.pack(len(value)), value)
                size += 8 + len(fact) + len(value)
            self._append(self.partition(key), pieces, size)

    def add_empty(self, origin: str) -> None:
        """A raw record that held nothing to stage: a bundle without parts (for reconciliation),
        on the partition of its origin."""
        o = origin.encode()
        pieces = [_HEAD.pack(0), _HEAD.pack(len(o)), o, _COUNTS.pack(0, 0)]
        self._append(self.partition(o), pieces, 10 + len(o))

    def _append(self, p: int, pieces: list[bytes], size: int) -> None:
        entry = self._open.get(p)
        if entry is not None and entry[1][1] + size > BATCH_BYTES:
            self._close(p)
            entry = None
        if entry is None:
            entry = self._open[p] = ([], [0, 8])
        entry[0].extend(pieces)
        entry[1][0] += 1
        entry[1][1] += size

    def _close(self, p: int) -> None:
        pieces, (count, _size) = self._open.pop(p)
        self.done.append((p, b"".join([BATCH_MAGIC, _U32.pack(count), *pieces])))

    def messages(self) -> list[tuple[int, bytes]]:
        """(partition, message) of everything added, in order; the writer is empty afterwards."""
        for p in list(self._open):
            self._close(p)
        done, self.done = self.done, []
        return done


def decode_batch(value: bytes, empties: list[str] | None = None) -> list[BatchPart]:
    """Every part of a batch message in decision order; ValueError if it is not one. The origins
    of bundles without parts (empty raw records) are appended to ``empties`` when given."""
    if not is_batch(value):
        raise ValueError("not a staging batch")
    out: list[BatchPart] = []
    try:
        (count,) = _U32.unpack_from(value, 4)
        pos, k = 8, 0
        unpack_head, unpack_counts, unpack_fact, unpack_u32 = (
            _HEAD.unpack_from, _COUNTS.unpack_from, _FACT.unpack_from, _U32.unpack_from,
        )  # fmt: skip
        for _ in range(count):
            (klen,) = unpack_head(value, pos)
            key = value[pos + 2 : pos + 2 + klen]
            pos += 2 + klen
            (olen,) = unpack_head(value, pos)
            origin = value[pos + 2 : pos + 2 + olen].decode()
            pos += 2 + olen
            n, nparts = unpack_counts(value, pos)
            pos += 4
            if not nparts and empties is not None:
                empties.append(origin)
            for _ in range(nparts):
                i, flen = unpack_fact(value, pos)
                pos += 4
                fact = value[pos : pos + flen]
                pos += flen
                (size,) = unpack_u32(value, pos)
                pos += 4
                out.append((k, key, i, origin, n, fact, value[pos : pos + size]))
                pos += size
                k += 1
    except struct.error as exc:
        raise ValueError(f"truncated staging batch: {exc}") from None
    if pos != len(value):
        raise ValueError("truncated or padded staging batch")
    return out
