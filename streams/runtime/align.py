"""Several partitions read as one stream in record-timestamp order, as Kafka Streams reads a task.

Why: one game's records can reach a worker through different partitions (a whole-slate poll is
keyed by its event id; two collectors; a retried send). Read each partition as fast as it comes,
a backfill drains one partition far ahead of another and a record that is older than what was
already processed looks late although it was on the broker all along. So records wait in one
queue per partition and leave smallest record timestamp first, the way Kafka Streams chooses the
next record of a task's partitions (``max.task.idle.ms``): while a partition's queue is empty, the
others wait for it only if the broker still holds records of it (it lags) and for at most
``idle_seconds``; a partition that is caught up holds nobody back, so a live feed is never
delayed. Ties go to the partition listed first, then by offset: the same order on every run.

Records are only queued in memory. What may be committed is each partition's released prefix
(``committable``): a restart re-reads what was still queued.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from confluent_kafka import Message

TP = tuple[str, int]


class TimestampAligner:
    """Queues per partition; ``release`` yields records in (timestamp, partition, offset) order."""

    def __init__(self, idle_seconds: float = 2.0) -> None:
        self.idle_seconds = idle_seconds
        self._queues: dict[TP, deque[tuple[int, int, Message]]] = {}
        self._rank: dict[TP, int] = {}
        self._waiting_since: dict[TP, float] = {}
        self._released: dict[TP, int] = {}  # next offset to commit, per partition
        self.size = 0
        self.waits = 0  # releases held back for a lagging partition (for counters)

    # -- partitions -------------------------------------------------------------------------

    def assign(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            if tp not in self._queues:
                self._queues[tp] = deque()
        self._rank = {tp: i for i, tp in enumerate(sorted(self._queues))}

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            q = self._queues.pop(tp, None)
            if q is not None:
                self.size -= len(q)
            self._waiting_since.pop(tp, None)
            self._released.pop(tp, None)
        self._rank = {tp: i for i, tp in enumerate(sorted(self._queues))}

    def clear(self) -> None:
        """Forget every queued record (a rewind re-reads them from the committed offsets)."""
        for q in self._queues.values():
            q.clear()
        self.size = 0
        self._waiting_since.clear()
        self._released.clear()

    # -- records ----------------------------------------------------------------------------

    def put(self, msg: Message) -> None:
        tp = (msg.topic(), msg.partition())
        q = self._queues.get(tp)
        if q is None:  # assigned without being announced (cannot happen): take it anyway
            self.assign([tp])
            q = self._queues[tp]
        _kind, ts = msg.timestamp()
        q.append((ts, msg.offset(), msg))
        self.size += 1
        self._waiting_since.pop(tp, None)

    def release(self, now: float, behind: Callable[[TP], bool | None]) -> Iterator[Message]:
        """Queued records in timestamp order, as long as no lagging partition's queue is empty.

        Whether an empty partition holds the others back cannot change during one call (nothing
        is consumed meanwhile), so it is decided once per partition and call. A generator: the
        caller processes each record before the next is chosen.
        """
        queues = self._queues
        holds: dict[TP, bool] = {}

        def holding(tp: TP) -> bool:
            h = holds.get(tp)
            if h is None:
                lag = behind(tp)
                if lag is False:
                    h = False
                else:  # lagging, or not known yet: wait for the fetch, but not for ever
                    since = self._waiting_since.setdefault(tp, now)
                    h = now - since < self.idle_seconds
                    if h:
                        self.waits += 1
                holds[tp] = h
            return h

        if any(holding(tp) for tp, q in queues.items() if not q):
            return
        rank, released = self._rank, self._released
        # the busy queues' heads in a heap: one push and one pop per record released
        heads = [(q[0][0], rank[tp], tp) for tp, q in queues.items() if q]
        heapq.heapify(heads)
        while heads:
            if len(heads) == 1:  # nothing to merge with: the whole queue, in order
                tp = heads[0][2]
                q = queues[tp]
                while q:
                    _ts, offset, msg = q.popleft()
                    self.size -= 1
                    released[tp] = offset + 1
                    yield msg
                return
            _ts, _rank, tp = heapq.heappop(heads)
            q = queues[tp]
            _ts, offset, msg = q.popleft()
            self.size -= 1
            released[tp] = offset + 1
            yield msg
            if q:
                heapq.heappush(heads, (q[0][0], _rank, tp))
            elif holding(tp):  # emptied and lagging: the others wait for its next records
                return

    def committable(self) -> dict[TP, int]:
        """Per partition, the offset after the last released record (taken: cleared)."""
        out, self._released = self._released, {}
        return out
