"""Per-minute quality reports: counters to deltas, deltas to per-(source, minute) totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.codec import default_codec
from streams.staging.agents import StagingCounters
from streams.staging.quality_report import SCHEMA, Deltas, Tally, Windows, report, totals

T0 = datetime(2026, 6, 1, 18, 0, 5, tzinfo=UTC)
MINUTE = T0.replace(second=0)


def _counters(promoted: int, dedup: int, raw_dead: int, parts_dead: int) -> StagingCounters:
    c = StagingCounters()
    c.promoted["sbd"], c.deduplicated["sbd"] = promoted, dedup
    c.raw_dead["sbd"], c.parts_dead["sbd"] = raw_dead, parts_dead
    c.replayed["sbd"] = 99  # suppressed after a crash: decided before, never counted again
    return c


def test_totals_count_parts_and_ignore_replayed_decisions() -> None:
    t = totals(_counters(7, 2, 1, 3))["sbd"]
    assert (t.promoted, t.deduplicated, t.dead_lettered, t.records_in) == (7, 2, 4, 13)
    assert t.pass_rate == 9 / 13


def test_a_worker_sends_what_its_counters_gained_in_the_minute_of_the_tick() -> None:
    d = Deltas()
    assert d.since_last(totals(_counters(5, 0, 1, 0)), T0) == [("sbd", MINUTE, Tally(5, 0, 1))]
    later = T0 + timedelta(seconds=60)
    assert d.since_last(totals(_counters(9, 1, 1, 0)), later) == [
        ("sbd", MINUTE + timedelta(minutes=1), Tally(4, 1, 0))
    ]
    assert d.since_last(totals(_counters(9, 1, 1, 0)), later) == []  # nothing moved
    source, window, tally = Tally.decode(Tally(4, 1, 0).encode("sbd", MINUTE))
    assert (source, window, tally) == ("sbd", MINUTE, Tally(4, 1, 0))


def test_deltas_of_several_workers_add_up_and_redeliveries_are_skipped() -> None:
    w = Windows()
    assert w.add("sbd", MINUTE, Tally(5, 0, 1), offset=0)
    assert w.add("sbd", MINUTE, Tally(3, 2, 0), offset=1)  # another worker, same minute
    [(source, window, tally)] = w.due()
    assert (source, window, tally, w.upto) == ("sbd", MINUTE, Tally(8, 2, 1), 1)
    assert w.due() == []

    taken_over = Windows()  # a new owner reloads the published totals and their position
    taken_over.load("sbd", MINUTE, Tally(8, 2, 1), upto=1)
    assert not taken_over.add("sbd", MINUTE, Tally(3, 2, 0), offset=1)  # redelivered: in already
    assert taken_over.add("sbd", MINUTE, Tally(0, 0, 4), offset=2)
    assert taken_over.due() == [("sbd", MINUTE, Tally(8, 2, 5))]


def test_minutes_beyond_the_horizon_are_forgotten() -> None:
    w = Windows()
    w.add("sbd", MINUTE, Tally(1, 0, 0), offset=0)
    w.add("sbd", MINUTE + timedelta(minutes=30), Tally(1, 0, 0), offset=1)
    w.due()
    assert list(w.totals) == [("sbd", MINUTE + timedelta(minutes=30))]


def test_the_report_encodes_with_the_topic_schema() -> None:
    rec = report("sbd", MINUTE, Tally(9, 1, 2), T0)
    back = default_codec().decode(default_codec().encoder(SCHEMA)(rec))
    assert back["records_in"] == 12 and back["pass_rate"] == 10 / 12
    assert back["stage"] == "staging" and back["mean_score"] is None
