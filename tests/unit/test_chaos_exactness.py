"""The chaos suite's exactness count: copies of a staged record beyond the reference's."""

from __future__ import annotations

from collections import Counter

from tests.chaos.exactness import excess

A, B, C = (b"g1", b"a"), (b"g1", b"b"), (b"g2", b"c")


def test_the_same_records_once_each_are_exact() -> None:
    assert excess(Counter([A, B, C]), Counter([C, B, A])) == 0


def test_a_record_written_again_after_a_restart_is_counted() -> None:
    assert excess(Counter([A, B, C]), Counter([A, B, B, C])) == 1
    assert excess(Counter([A]), Counter([A, A, A])) == 2


def test_the_references_own_identical_re_observations_are_allowed() -> None:
    assert excess(Counter([A, A, B]), Counter([A, A, B])) == 0
    assert excess(Counter([A, A, B]), Counter([A, A, A, B])) == 1


def test_a_record_the_reference_lacks_is_not_a_repeat_unless_repeated() -> None:
    assert excess(Counter([A]), Counter([A, C])) == 0
    assert excess(Counter([A]), Counter([A, C, C])) == 1
