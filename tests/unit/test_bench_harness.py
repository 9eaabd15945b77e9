"""The bench harness's statistics, with exact values (no timing assertions anywhere)."""

from __future__ import annotations

import pytest

from bench.harness import Measurement, StageStats, percentile, summarize


def test_summary_of_odd_and_even_counts() -> None:
    s = summarize([5.0, 1.0, 3.0])
    assert (s.median, s.min, s.max, s.n) == (3.0, 1.0, 5.0, 3)
    assert summarize([4.0, 1.0, 3.0, 2.0]).median == 2.5


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = list(range(1, 11))  # 1..10, numpy's default ("linear") gives the same
    assert percentile(values, 0) == 1
    assert percentile(values, 50) == 5.5
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 100) == 10
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order of input does not matter


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_stage_stats_rates_cpu_and_memory() -> None:
    runs = [
        Measurement("s", 1000, 2.0, 1.0, 50.0),
        Measurement("s", 1000, 1.0, 0.5, 70.0),
        Measurement("s", 1000, 4.0, 2.0, 60.0),
    ]
    st = StageStats("s", runs)
    assert (st.rate.median, st.rate.min, st.rate.max) == (500.0, 250.0, 1000.0)
    assert st.cpu_per_1k.median == 1.0
    assert st.peak_rss is not None and st.peak_rss.median == 60.0
    assert st.as_dict()["records_per_s"]["median"] == 500.0
