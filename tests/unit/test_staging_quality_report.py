"""Per-minute quality reports: counters to per-(source, minute) totals, and the record."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from schemas.codec import default_codec
from streams.staging.agents import StagingCounters
from streams.staging.quality_report import SCHEMA, QualityWindows, Tally, report, totals

T0 = datetime(2026, 6, 1, 18, 0, 5, tzinfo=UTC)


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


def test_quarantined_records_count_against_the_pass_rate_when_the_agents_have_them() -> None:
    c = _counters(8, 0, 0, 0)
    c.quarantined = Counter({"sbd": 2})  # type: ignore[attr-defined]
    assert totals(c)["sbd"].pass_rate == 0.8


def test_deltas_go_to_the_minute_of_the_tick_and_totals_accumulate() -> None:
    w = QualityWindows()
    w.observe(totals(_counters(5, 0, 1, 0)), T0)
    w.observe(totals(_counters(9, 1, 1, 0)), T0 + timedelta(seconds=20))
    [(source, window, tally)] = w.due()
    assert (source, window) == ("sbd", T0.replace(second=0))
    assert (tally.promoted, tally.deduplicated, tally.dead_lettered) == (9, 1, 1)
    w.observe(totals(_counters(9, 1, 3, 0)), T0 + timedelta(seconds=60))
    [(_, window2, tally2)] = w.due()
    assert window2 == T0.replace(second=0) + timedelta(minutes=1)
    assert (tally2.records_in, tally2.dead_lettered, tally2.pass_rate) == (2, 2, 0.0)
    w.observe(totals(_counters(9, 1, 3, 0)), T0 + timedelta(seconds=70))
    assert w.due() == []  # nothing moved: nothing to publish


def test_the_report_encodes_with_the_topic_schema() -> None:
    rec = report("sbd", T0.replace(second=0), Tally(9, 1, 2), T0)
    back = default_codec().decode(default_codec().encoder(SCHEMA)(rec))
    assert back["records_in"] == 12 and back["pass_rate"] == 10 / 12
    assert back["stage"] == "staging" and back["mean_score"] is None
