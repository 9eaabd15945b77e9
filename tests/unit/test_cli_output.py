"""What the command line prints: one JSON time form, reasons cut at word boundaries, tables."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

import pytest

from oddsflow.cli import _service_state
from oddsflow.console import render, table
from oddsflow.errors import one_line, shorten
from oddsflow.jsonout import dumps, iso, plain
from oddsflow.ops.dlq import REASON_WIDTH, Group, format_groups

REASON = (
    "event sim21-20260403T170000-g0: team name 'Gotham Knights' matches no MLB franchise"
    " and no alias of one"
)


def test_every_time_has_one_form() -> None:
    t = datetime(2026, 12, 2, 2, 19, 48, 654321, tzinfo=UTC)
    assert iso(t) == "2026-12-02T02:19:48Z"
    assert iso(t.astimezone(timezone(timedelta(hours=-5)))) == "2026-12-02T02:19:48Z"
    assert iso(datetime(2026, 12, 2, 2, 19, 48)) == "2026-12-02T02:19:48Z"  # naive is UTC
    assert iso(None) is None


def test_plain_makes_json_of_what_commands_report() -> None:
    class Status(Enum):
        OK = "OK"

    @dataclass
    class Row:
        at: datetime
        status: Status
        key: bytes
        rate: float

    doc = plain({"rows": [Row(datetime(2026, 1, 1, tzinfo=UTC), Status.OK, b"k", math.nan)]})
    assert doc == {
        "rows": [{"at": "2026-01-01T00:00:00Z", "status": "OK", "key": "k", "rate": None}]
    }
    assert json.loads(dumps(doc)) == doc


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_reason_is_cut_at_a_word_boundary(width: int) -> None:
    cut = shorten(REASON, width)
    assert len(cut) <= width and cut.endswith("…")
    kept = cut.removesuffix("…")
    assert REASON.startswith(kept)
    assert REASON[len(kept)] == " " or REASON[len(kept) - 1] in " ,;:("  # never mid-word


def test_short_text_and_one_line() -> None:
    assert shorten("short", 80) == "short"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"  # one long word: no boundary to cut at
    assert one_line("first\n  second\tthird ") == "first second third"


def test_dlq_list_shows_groups_with_whole_words() -> None:
    t = datetime(2026, 11, 26, 14, 54, 46, tzinfo=UTC)
    examples = [{"origin": "raw.odds.simulator:1:360", "failed_at": iso(t), "reason": REASON}]
    groups = [
        Group(
            "staging",
            "simulator",
            "unknown_team",
            3,
            "raw.odds.simulator:1:360",
            REASON,
            t,
            t,
            examples,
        ),
        Group(
            "sink", "simulator", "bad_marker", 1, "raw.odds.simulator:0:2", "starts 00ff", t, t, []
        ),
    ]
    text = format_groups(groups, show_examples=True)
    lines = text.splitlines()
    assert lines[0] == "4 dead letters in 2 groups"
    assert lines[1].split() == ["stage", "source", "error", "class", "count", "example",
                                "origin", "reason"]  # fmt: skip
    assert shorten(REASON, REASON_WIDTH) in lines[2] and lines[2].split()[3] == "3"
    assert "2026-11-26T14:54:46Z  raw.odds.simulator:1:360" in lines[3]
    assert lines[4].split()[:4] == ["sink", "simulator", "bad_marker", "1"]
    assert all(line == line.rstrip() for line in lines)


def test_tables_are_plain_and_not_cut_to_a_terminal() -> None:
    wide = "x" * 300
    text = render(table(("name", "n"), [(wide, 1), ("b", 22)], right=("n",)))
    assert text.splitlines() == [f"{'name':<300}   n", f"{wide}   1", f"{'b':<300}  22"]


def test_services_status_lines_become_fields() -> None:
    line = "kafka     up    127.0.0.1:19092  (pid 5674, Kafka 4.1.1)"
    assert _service_state(line) == {
        "service": "kafka", "up": True, "state": "up", "where": "127.0.0.1:19092",
        "detail": "pid 5674, Kafka 4.1.1",
    }  # fmt: skip
    assert _service_state("postgres  down  DATABASE_URL")["up"] is False


def test_version_and_json_of_the_offline_commands() -> None:
    def run(*argv: str) -> str:
        res = subprocess.run([sys.executable, "-m", "oddsflow.cli", *argv], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert run("--version").startswith("oddsflow ")
    topics = json.loads(run("topics", "list", "--json"))
    assert {t["topic"] for t in topics} >= {"raw.odds.simulator", "curated.steam_moves"}
    assert json.loads(run("topology", "--json"))["topics"]


def test_a_flag_given_as_zero_is_zero_not_the_configured_default() -> None:
    import argparse

    from core.settings import load_settings
    from producers.collect import simulator_from

    s = load_settings(simulator={"seed": 7, "games": 6})
    given = argparse.Namespace(seed=0, games=None, books=None, ticks=None)
    sim = simulator_from(s, given)
    assert (sim.seed, sim.games) == (0, 6)
