"""Partitions read as one stream in record-timestamp order (the aligner), Kafka Streams' rule."""

from __future__ import annotations

from streams.runtime.align import TimestampAligner
from tests.support.fake_message import FakeMessage

A, B, C = ("raw", 0), ("raw", 1), ("other", 0)


def test_two_partitions_leave_in_timestamp_order_ties_by_partition() -> None:
    al = TimestampAligner()
    al.assign([A, B])
    for o, ts in enumerate([10, 30, 50]):
        al.put(FakeMessage("raw", 0, o, ts=ts))
    for o, ts in enumerate([20, 30, 40]):
        al.put(FakeMessage("raw", 1, o, ts=ts))
    out = [(m.partition(), m.ts) for m in al.release(0.0, lambda tp: False)]
    assert out == [(0, 10), (1, 20), (0, 30), (1, 30), (1, 40), (0, 50)]
    assert al.committable() == {A: 3, B: 3} and al.size == 0


def test_an_empty_partition_that_lags_holds_the_others_then_gives_up() -> None:
    al = TimestampAligner(idle_seconds=2.0)
    al.assign([A, B])
    al.put(FakeMessage("raw", 0, 0, ts=100))
    lagging = {B: True}
    assert list(al.release(0.0, lambda tp: lagging.get(tp, False))) == []  # B may hold older
    assert list(al.release(1.0, lambda tp: lagging.get(tp, False))) == []
    assert al.waits == 2
    released = list(al.release(2.5, lambda tp: lagging.get(tp, False)))  # waited long enough
    assert [m.ts for m in released] == [100]


def test_a_caught_up_partition_holds_nobody_back() -> None:
    al = TimestampAligner()
    al.assign([A, B, C])
    al.put(FakeMessage("raw", 0, 0, ts=100))
    assert [m.ts for m in al.release(0.0, lambda tp: False)] == [100]


def test_a_partition_that_empties_while_lagging_stops_the_merge() -> None:
    al = TimestampAligner()
    al.assign([A, B])
    al.put(FakeMessage("raw", 0, 0, ts=10))
    al.put(FakeMessage("raw", 0, 1, ts=40))
    al.put(FakeMessage("raw", 1, 0, ts=20))
    # B's next records are still on the broker: after B's 20, A's 40 must wait for them
    out = [m.ts for m in al.release(0.0, lambda tp: tp == B)]
    assert out == [10, 20]
    assert al.committable() == {A: 1, B: 1}
    al.put(FakeMessage("raw", 1, 1, ts=30))
    assert [m.ts for m in al.release(0.1, lambda tp: False)] == [30, 40]


def test_revoked_partitions_forget_their_queue() -> None:
    al = TimestampAligner()
    al.assign([A, B])
    al.put(FakeMessage("raw", 1, 0, ts=5))
    al.revoke([B])
    assert al.size == 0 and list(al.release(0.0, lambda tp: False)) == []
