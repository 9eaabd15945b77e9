"""Per-minute quality reports: counts to deltas, deltas to per-(source, minute) totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.codec import default_codec
from streams.runtime.changelog import latest
from streams.staging.quality_report import SCHEMA, Counts, Tally, Windows, report

T0 = datetime(2026, 6, 1, 18, 0, 5, tzinfo=UTC)
MINUTE = T0.replace(second=0)


def test_a_tally_counts_parts_and_late_ones_pass() -> None:
    t = Tally(promoted=7, deduplicated=2, dead_lettered=4, late=3, empty=5)
    assert t.records_in == 16  # empty raw records have no parts
    assert t.pass_rate == 12 / 16
    assert Tally().pass_rate == 1.0


def test_a_worker_sends_what_it_counted_per_minute_of_processing() -> None:
    c = Counts()
    c.tally("sbd", T0).promoted += 5
    c.tally("sbd", T0).dead_lettered += 1
    later = T0 + timedelta(seconds=60)
    c.tally("sbd", later).late += 2
    c.tally("odds_api", later).empty += 1
    assert c.take() == [
        ("odds_api", MINUTE + timedelta(minutes=1), Tally(empty=1)),
        ("sbd", MINUTE, Tally(5, 0, 1)),
        ("sbd", MINUTE + timedelta(minutes=1), Tally(late=2)),
    ]
    assert c.take() == []  # nothing counted since
    source, window, tally = Tally.decode(Tally(4, 1, 0, 2, 1).encode("sbd", MINUTE))
    assert (source, window, tally) == ("sbd", MINUTE, Tally(4, 1, 0, 2, 1))


def test_deltas_of_several_workers_add_up_and_survive_a_restart() -> None:
    w = Windows()
    w.add("sbd", MINUTE, Tally(5, 0, 1))
    w.add("sbd", MINUTE, Tally(3, 2, 0, 1))  # another worker, same minute
    [(source, window, tally)] = w.due()
    assert (source, window, tally) == ("sbd", MINUTE, Tally(8, 2, 1, 1))
    assert w.due() == []
    taken_over = Windows()  # a new owner restores the totals from the changelog
    taken_over.restore(latest(w.take_changes()))
    taken_over.add("sbd", MINUTE, Tally(0, 0, 4))
    assert taken_over.due() == [("sbd", MINUTE, Tally(8, 2, 5, 1))]


def test_minutes_beyond_the_horizon_are_forgotten_and_deleted_from_the_changelog() -> None:
    w = Windows()
    w.add("sbd", MINUTE, Tally(1, 0, 0))
    w.add("sbd", MINUTE + timedelta(minutes=30), Tally(1, 0, 0))
    w.due()
    assert list(w.totals) == [("sbd", MINUTE + timedelta(minutes=30))]
    changes = dict(w.take_changes())
    assert changes[f"sbd|{int(MINUTE.timestamp())}".encode()] is None


def test_the_report_encodes_with_the_topic_schema() -> None:
    rec = report("sbd", MINUTE, Tally(9, 1, 2, 3, 4), T0)
    back = default_codec().decode(default_codec().encoder(SCHEMA)(rec))
    assert back["records_in"] == 15 and back["pass_rate"] == 13 / 15
    assert (back["late"], back["empty"]) == (3, 4)
    assert back["stage"] == "staging" and back["mean_score"] is None
