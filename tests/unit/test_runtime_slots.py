"""Worker slots: the transactional id and static member id of a stream worker (staging, features).

A live worker holds its slot; a successor (after a SIGKILL the lock is gone with the process)
takes the lowest free one, so it fences the dead worker's open transaction at once."""

from __future__ import annotations

from pathlib import Path

from streams.runtime.loop import claim_slot as _claim_slot


def test_a_held_slot_is_skipped_and_a_released_one_reused(tmp_path: Path) -> None:
    first, fh0 = _claim_slot(tmp_path, "g")
    second, fh1 = _claim_slot(tmp_path, "g")
    assert (first, second) == (0, 1)
    fh0.close()  # the process holding slot 0 died
    again, fh2 = _claim_slot(tmp_path, "g")
    assert again == 0
    other, fh3 = _claim_slot(tmp_path, "other-group")  # slots are per group
    assert other == 0
    for fh in (fh1, fh2, fh3):
        fh.close()
