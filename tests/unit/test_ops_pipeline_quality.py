"""`pipeline quality`'s own output: progress only on a terminal, and an exit 1 that says why.

The reconciliation and the readings it prints are replaced (they read Kafka and Postgres, tested
in tests/integration/test_staging_reconcile.py): what is tested is the command's formatting and
its verdict.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import pytest

import oddsflow.console
import oddsflow.ops.dlq
import streams.staging.reconcile
from core.settings import load_settings
from oddsflow.ops import pipeline


def _row(source: str, **counts: int) -> dict[str, Any]:
    row = {"source": source, "raw_in": 10, "raw_promoted": 10, "raw_unchanged": 0, "raw_late": 0,
           "raw_dead_lettered": 0, "raw_empty": 0, "raw_pending": 0, "raw_unexplained": 0,
           "parts": 10, "promoted": 10, "unchanged": 0, "late": 0, "dead_lettered": 0}  # fmt: skip
    row.update(counts)
    promoted = row["raw_in"] - row["raw_pending"] - row["raw_unexplained"]
    row["raw_promoted"] = row["parts"] = row["promoted"] = promoted
    row["balanced"] = not (row["raw_pending"] or row["raw_unexplained"])
    return row


Quality = Callable[..., tuple[int, str, str]]


@pytest.fixture
def quality(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Quality:
    """``quality(rows, terminal=False, json=False)``: `pipeline quality` over these
    reconciliation rows; its (exit status, stdout, stderr)."""

    async def no_rates(_settings: Any) -> list[dict]:
        return []

    monkeypatch.setattr(oddsflow.ops.dlq, "replays_by_source", lambda _s: {})
    monkeypatch.setattr(pipeline, "latest_pass_rates", no_rates)

    def run(rows: list[dict[str, Any]], terminal: bool = False, json: bool = False) -> Any:
        monkeypatch.setattr(streams.staging.reconcile, "reconcile", lambda _s, _zone: rows)
        if terminal:  # stderr as a terminal: rich draws the progress there
            console = functools.partial(oddsflow.console.Console, force_terminal=True)
            monkeypatch.setattr(oddsflow.console, "Console", console)
        code = pipeline.run_quality(load_settings(), argparse.Namespace(zone="staging", json=json))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_an_unbalanced_source_exits_1_with_one_line_saying_why(quality: Quality) -> None:
    rows = [_row("simulator"), _row("odds_api", raw_pending=2, raw_unexplained=1)]
    code, out, err = quality(rows)
    assert code == 1
    [line] = err.splitlines()  # no progress off a terminal: the explanation alone
    assert line.startswith(
        "oddsflow pipeline quality: not balanced: odds_api (2 pending, 1 unexplained)."
    )
    assert "simulator" not in line  # only the source that does not balance is named
    assert "Is the staging worker running and caught up?" in line
    assert "odds_api" in out and "False" in out  # the table shows it too


def test_parts_that_do_not_add_up_are_said_so(quality: Quality) -> None:
    row = {**_row("sbd"), "parts": 11, "balanced": False}
    code, _out, err = quality([row])
    assert code == 1
    assert "not balanced: sbd (parts do not add up)." in err


def test_balanced_sources_exit_0_and_say_nothing_on_stderr(quality: Quality) -> None:
    code, out, err = quality([_row("simulator"), _row("sbd")])
    assert (code, err) == (0, "")
    assert "simulator" in out and "sbd" in out


def test_json_keeps_the_verdict_and_its_line(quality: Quality) -> None:
    rows = [_row("simulator", raw_pending=3)]
    code, out, err = quality(rows, json=True)
    assert code == 1
    assert '"balanced": false' in out
    assert err.strip().endswith("ask again once its lag is 0)")


def test_a_terminal_shows_progress_then_clears_it(quality: Quality) -> None:
    rows = [_row("simulator", raw_unexplained=4)]
    code, _out, err = quality(rows, terminal=True)
    assert code == 1
    assert "reconciling staging" in err  # the bar's first step
    assert "\x1b[?25l" in err and "\x1b[?25h" in err  # drawn, then the cursor given back
    *_drawn, last = err.splitlines()
    assert "not balanced: simulator (4 unexplained)." in last  # the verdict outlives the bar
