"""One partition's output depends on each game's own order, not on how its games interleave.

Two independent runs of the pipeline (a replay, the chaos suite's reference and tormented runs)
interleave the games of a partition differently: staging merges its input partitions as fast as
each is read. A game left behind by the partition's clock must still get all of its records.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.engine_rate import synthetic_lines
from core.settings import FeatureSettings
from streams.features.partitioned import LINE, PartitionFeatures
from streams.features.worker import OUTPUTS
from tests.helpers import curated_table


def run(lines: list[dict[str, Any]]) -> tuple[list[str], int]:
    """The table the outputs make and the late count (batches of 500 records: the synthetic
    lines are out of order within the lateness, so batches meet corrections)."""
    pf = PartitionFeatures(FeatureSettings(), 0)
    out = []
    late = 0
    for i in range(0, len(lines), 500):
        out += pf.process([(LINE, rec) for rec in lines[i : i + 500]])
        late += len(pf.drain_late())
    out += pf.flush_all()
    rows = [(t, r) for t in OUTPUTS for r in curated_table(t, [r for tt, r in out if tt == t])]
    return sorted(repr(o) for o in rows), late


def lagging(lines: list[dict[str, Any]], game: str, lag: timedelta) -> list[dict[str, Any]]:
    """The same records with one game delivered ``lag`` of event time behind the others; each
    game keeps its own order (its key keeps it on one partition)."""
    newest: dict[str, Any] = {}
    keyed = []
    for i, rec in enumerate(lines):
        gid = rec["game_id"]
        newest[gid] = max(newest.get(gid, rec["event_time"]), rec["event_time"])
        keyed.append((newest[gid] + (lag if gid == game else timedelta(0)), i, rec))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [rec for _, _, rec in keyed]


def test_a_game_behind_the_partition_clock_loses_nothing() -> None:
    lines = synthetic_lines(6000, games=4)
    want, late = run(lines)
    assert late == 0
    for lag in (timedelta(minutes=11), timedelta(minutes=45)):  # beyond the 10-minute lateness
        got, late = run(lagging(lines, "G001", lag))
        assert late == 0
        assert got == want


def test_queued_inputs_survive_a_restart_one_entry_each() -> None:
    """Records the aligner holds back are stored one table entry each (a queue of thousands
    stored as one entry outgrew the broker's 1 MB limit and crash-looped the worker)."""
    from schemas.codec import default_codec
    from streams.features.partitioned import QUEUE_PREFIX

    codec = default_codec()
    encode, decode = codec.encoder("oddsflow.staging.OddsLine"), codec.decode
    lines = synthetic_lines(3000, games=2)
    pf = PartitionFeatures(FeatureSettings(), 0)
    for off, rec in enumerate(lines):
        value = encode(rec)
        pf.inputs.put(LINE, off, value, decode(value), now=0.0)
    # the games topic is busy (not caught up, heard from just now): nothing may pass it
    assert list(pf.inputs.release(0.5, lambda _kind: False)) == []
    table: dict[bytes, bytes] = {}

    def write(changes: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in changes:
            assert value is None or len(value) < 100_000
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    write(pf.take_changes())
    assert sum(k.startswith(QUEUE_PREFIX) for k in table) == len(lines)

    again = PartitionFeatures(FeatureSettings(), 0)
    again.restore(table, decode)
    released = list(again.inputs.release(10.0, lambda _kind: True))
    assert [off for _, off, _ in released] == list(range(len(lines)))
    write(again.take_changes())
    assert not any(k.startswith(QUEUE_PREFIX) for k in table)


def test_a_quiet_topic_that_lags_holds_the_others_back_from_when_it_starts_to() -> None:
    """The games topic hears nothing while staging has written nothing; then one transaction
    puts a game's first record on games and its lines on lines, and the lines come in first.
    Judged by the last arrival, games had been idle long ago and let every line pass: the
    reference run of the full chaos suite applied 3 hours of lines before 25 games' first
    records and reported them late (the tormented run, restarted meanwhile, did not)."""
    from streams.features.partitioned import ALIGN_IDLE_SECONDS, GAME, AlignedInputs

    lines = synthetic_lines(40, games=1)
    first = min(rec["event_time"] for rec in lines) - timedelta(seconds=1)
    game = {"game_id": lines[0]["game_id"], "event_time": first}  # the game before its lines
    inputs = AlignedInputs()
    start = 1000.0  # long after the assignment: every topic has been quiet since
    for off, rec in enumerate(lines):
        inputs.put(LINE, off, b"", rec, start)
    games_lag = {GAME: True}

    def caught_up(kind: str) -> bool:
        return not games_lag.get(kind, False)

    assert list(inputs.release(start, caught_up)) == []
    assert list(inputs.release(start + ALIGN_IDLE_SECONDS / 2, caught_up)) == []
    inputs.put(GAME, 0, b"", game, start + ALIGN_IDLE_SECONDS / 2)
    games_lag[GAME] = False
    released = list(inputs.release(start + ALIGN_IDLE_SECONDS / 2, caught_up))
    assert released[0][0] == GAME and len(released) == len(lines) + 1

    # a topic that lags and never delivers holds the others back for ALIGN_IDLE_SECONDS only
    inputs.put(LINE, len(lines), b"", lines[-1], start + 10)
    games_lag[GAME] = True
    assert list(inputs.release(start + 10, caught_up)) == []
    assert len(list(inputs.release(start + 10 + ALIGN_IDLE_SECONDS, caught_up))) == 1
