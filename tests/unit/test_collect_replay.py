"""File replay without a broker: record building, event-time order, odd rows kept, pacing."""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.formats import parse
from producers.collect import add_collect_arguments, parse_interval
from producers.history import (
    Progress,
    detect_format,
    file_records,
    parse_speed,
    pinnacle_records,
    replay,
    sbro_records,
)
from producers.publisher import PublishStats
from tests.fixtures_path import PINNACLE, SBRO

GAME = "PIT201604030,2016-04-03 20:05:00+00:00,St. Louis Cardinals,Pittsburgh Pirates,"


class ListPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str], float]] = []
        self.keys: list[tuple[str | None, datetime | None]] = []  # (key, timestamp) per record
        self.stats = PublishStats()

    def publish(  # type: ignore[no-untyped-def]
        self, event_id, payload, fetched_at, content_type="", request=None, key=None, timestamp=None
    ) -> None:
        self.sent.append((event_id, payload, dict(request or {}), time.monotonic()))
        self.keys.append((key, timestamp))
        self.stats.sent += 1

    def poll(self, timeout: float = 0.0) -> int:
        time.sleep(timeout)
        return 0

    def close(self) -> PublishStats:
        self.stats.acked = self.stats.sent
        return self.stats


def pinnacle_file(path: Path, rows: list[str]) -> Path:
    """A Pinnacle history of ``rows`` under the real sample's header."""
    header = PINNACLE.read_text().split("\n", 1)[0]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def envelope(rec) -> dict:  # type: ignore[no-untyped-def]
    return {
        "event_id": rec.event_id,
        "source": "file",
        "fetched_at": datetime(2026, 1, 1, tzinfo=UTC),
        "payload": rec.payload,
        "request": rec.request,
    }


def test_pinnacle_one_record_per_row_in_entered_time_order() -> None:
    lines = PINNACLE.read_bytes().split(b"\n")
    rows = [ln for ln in lines[1:] if ln]
    recs = pinnacle_records(PINNACLE)
    assert len(recs) == len(rows) == 1906
    assert sorted(r.event_id for r in recs) == sorted(
        f"{PINNACLE.name}:{n}" for n in range(2, 1908)
    )
    times = [r.event_time for r in recs]
    assert times == sorted(times)  # type: ignore[type-var]
    assert [r.event_id for r in recs] != [f"{PINNACLE.name}:{n}" for n in range(2, 1908)]
    by_line = {int(r.event_id.rsplit(":", 1)[1]): r for r in recs}
    assert by_line[2].payload == lines[1]  # verbatim bytes, '.0' suffixes and all
    assert by_line[2].request["header"] == lines[0].decode()
    parsed = parse(envelope(by_line[2]))
    assert [ln["price_american"] for ln in parsed.lines] == [-110, 102]


def test_sort_is_stable_and_odd_rows_are_kept(tmp_path: Path) -> None:
    row = GAME + "0.0,A,B,1,4.0,{t},,,,{ml},102.0,,,"
    f = pinnacle_file(
        tmp_path / "odd.csv",
        [
            row.format(t="2016-04-01 10:00:00+00:00", ml="-110.0"),
            row.format(t="2016-03-31 10:00:00+00:00", ml=""),  # empty price
            row.format(t="not a time", ml="-115"),  # keeps its predecessor's time
            row.format(t="2016-03-31 10:00:00+00:00", ml="-120"),  # repeated timestamp
        ],
    )
    ids = [r.event_id.split(":")[1] for r in file_records(f)]
    assert ids == ["3", "4", "5", "2"]
    assert detect_format(f) == "pinnacle"
    odd = next(r for r in file_records(f) if r.event_id.endswith(":3"))
    assert odd.payload == row.format(t="2016-03-31 10:00:00+00:00", ml="").encode()


def test_sbro_games_pair_rows_and_number_doubleheaders() -> None:
    recs = sbro_records(SBRO)
    assert len(recs) == (len(SBRO.read_text().splitlines()) - 1) // 2 == 2464
    assert all(r.payload.count(b"\n") == 1 and r.request["season"] == "2018" for r in recs)
    second = [r for r in recs if r.request["game_number"] == "2"]
    assert len(second) >= 3
    first_of = {
        (
            r.payload.split(b",")[0],
            r.payload.split(b",")[3],
            r.payload.split(b"\n")[1].split(b",")[3],
        )
        for r in recs
        if r.request["game_number"] == "1"
    }
    g2 = second[0]
    v, h = g2.payload.split(b"\n")
    assert (v.split(b",")[0], v.split(b",")[3], h.split(b",")[3]) in first_of
    ids1 = {
        ln["game_id"]
        for r in recs
        if r.request["game_number"] == "1"
        for ln in parse(envelope(r)).lines
    }
    ids2 = {ln["game_id"] for ln in parse(envelope(g2)).lines}
    assert len(ids2) == 1 and next(iter(ids2)).endswith("-2") and not ids2 & ids1
    times = [r.event_time for r in recs]
    assert times == sorted(times)  # type: ignore[type-var]


def test_sbro_unpaired_row_is_published_alone(tmp_path: Path) -> None:
    lines = SBRO.read_text().splitlines()
    f = tmp_path / "sbro_2018.csv"
    f.write_text("\n".join([lines[0], lines[1], lines[3], lines[4]]) + "\n")  # V, V, H
    recs = sbro_records(f)
    assert [r.event_id for r in recs] == ["sbro_2018.csv:2", "sbro_2018.csv:3-4"]
    assert recs[0].payload == lines[1].encode() and "game_number" not in recs[0].request


def test_replay_paces_by_event_time_and_stops_on_request(tmp_path: Path) -> None:
    row = GAME + "0.0,A,B,1,4,{t},,,,-110,102,,,"
    stamps = ["2016-04-01 10:00:00", "2016-04-01 10:00:30", "2016-04-01 10:01:00"]
    f = pinnacle_file(tmp_path / "paced.csv", [row.format(t=t) for t in stamps])
    pub = ListPublisher()
    res = replay(pub, file_records(f), speed=200.0)  # 60 s of event time in 0.3 s
    assert res.stats.acked == 3 and not res.stopped
    offsets = [s[3] - pub.sent[0][3] for s in pub.sent]
    assert offsets[1] >= 0.15 - 0.01 and offsets[2] >= 0.3 - 0.01
    stop = threading.Event()
    stop.set()
    res = replay(ListPublisher(), file_records(f), stop=stop)
    assert res.sent == 0 and res.stopped


def test_progress_bar_reaches_total() -> None:
    out = io.StringIO()
    p = Progress(4, "x.csv", out)
    for i in range(1, 5):
        p.update(i)
    p.update(4, force=True)
    assert (
        out.getvalue()
        .rstrip()
        .endswith("4/4 100% " + out.getvalue().rstrip().split()[-2] + " rec/s")
    )
    assert "[" + "#" * 30 + "]" in out.getvalue()


def test_argument_parsing() -> None:
    assert parse_speed("60x") == 60.0 and parse_speed("2.5") == 2.5
    assert parse_speed(None) is None and parse_speed("max") is None
    with pytest.raises(ValueError):
        parse_speed("-3x")
    assert parse_interval("60s") == 60.0 and parse_interval("5m") == 300.0
    assert parse_interval("1h") == 3600.0 and parse_interval("90") == 90.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_interval("soon")
    p = argparse.ArgumentParser()
    add_collect_arguments(p)
    a = p.parse_args(["--source", "file", "h.csv", "--speed", "60x", "--format", "sbro"])
    assert (a.source, a.path, a.speed, a.format) == ("file", Path("h.csv"), 60.0, "sbro")
    a = p.parse_args(["--source", "odds_api", "--interval", "2m", "--once", "--base-url", "u"])
    assert (a.interval, a.once, a.base_url) == (120.0, True, "u")
    a = p.parse_args(["--source", "simulator", "--seed", "3"])
    assert (a.seed, a.interval, a.once, a.speed) == (3, 60.0, False, None)


# ---------------------------------------------------------------- gzip and unreadable files


def test_gzipped_histories_replay_as_their_plain_files(tmp_path: Path) -> None:
    plain = file_records(PINNACLE)
    gz = tmp_path / PINNACLE.name.replace(".csv", ".csv.gz")
    gz.write_bytes(gzip.compress(PINNACLE.read_bytes()))
    assert detect_format(gz) == "pinnacle"
    packed = file_records(gz)
    assert len(packed) == len(plain) == 1906
    assert [(r.payload, r.request["header"], r.event_time) for r in packed] == [
        (r.payload, r.request["header"], r.event_time) for r in plain
    ]
    sbro_gz = tmp_path / "mlb_2018.csv.gz"
    sbro_gz.write_bytes(gzip.compress(SBRO.read_bytes()))
    assert [r.payload for r in file_records(sbro_gz)] == [r.payload for r in sbro_records(SBRO)]
    jsonl = tmp_path / "archive.jsonl.gz"
    jsonl.write_bytes(gzip.compress(b'{"fetched_at": "2026-04-01T17:00:00Z", "x": 1}\n'))
    (rec,) = file_records(jsonl)
    assert rec.payload.startswith(b'{"fetched_at"') and rec.request["format"] == "jsonl"


def run_collect(*argv: str, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``oddsflow collect`` in a child process: what a user sees on stderr, and the status."""
    return subprocess.run(
        [*wrap, sys.executable, "-m", "oddsflow.cli", "collect", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"},  # never reached
    )


def unreadable(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Each kind of bad PATH: (arguments, what the one line says)."""
    corrupt = tmp_path / "season.csv.gz"
    corrupt.write_bytes(gzip.compress(PINNACLE.read_bytes())[:-40])  # cut short
    garbage = tmp_path / "noise.csv.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    binary = tmp_path / "noise.csv"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\nnothing to replay\n")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    return {
        "missing": ([str(tmp_path / "nope.csv")], "no such file"),
        "directory": ([str(tmp_path)], "it is a directory"),
        "truncated gzip": ([str(corrupt)], "corrupt gzip data"),
        "not gzip inside": ([str(garbage)], "corrupt gzip data"),
        "binary": ([str(binary)], "not a CSV or JSON-lines text file"),
        "unknown format": ([str(text)], "unknown format"),
        "empty": ([str(empty)], "it is empty"),
        "binary with --format": ([str(binary), "--format", "pinnacle"], "not UTF-8"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "truncated gzip", "not gzip inside", "binary", "unknown format",
     "empty", "binary with --format"],
)  # fmt: skip
def test_an_unreadable_file_is_one_line_and_status_1(tmp_path: Path, case: str) -> None:
    argv, says = unreadable(tmp_path)[case]
    out = run_collect("--source", "file", *argv)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("oddsflow: cannot replay ") and says in line
    assert out.stdout == ""


def test_a_file_without_read_permission_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "locked.csv"
    f.write_bytes(PINNACLE.read_bytes())
    f.chmod(0)
    wrap: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root reads any file: the child runs without that capability
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot withhold read permission")
        wrap = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
    out = run_collect("--source", "file", str(f), wrap=wrap)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [f"oddsflow: cannot replay {f}: permission denied"]


def test_no_path_is_a_usage_error() -> None:
    out = run_collect("--source", "file")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        "oddsflow collect: --source file needs the PATH of a history file"
    ]


# ---------------------------------------------------------------- keys and record timestamps


def test_pinnacle_rows_are_keyed_by_their_game_and_stamped_with_their_recorded_time() -> None:
    recs = pinnacle_records(PINNACLE)
    by_key: dict[str, set[str]] = {}
    for r in recs:
        (game,) = parse(envelope(r)).games  # every row states its game
        assert r.key == game["game_id"], r.event_id  # the id staging computes: one game, one key
        by_key.setdefault(r.key, set()).add(r.request["line"])
        cells = dict(
            zip(r.request["header"].split(","), r.payload.decode().split(","), strict=True)
        )
        entered = datetime.fromisoformat(cells["EnteredDateTimeUTC"])
        assert r.event_time == entered  # the Kafka timestamp the replay gives the record
    # 21 games, not 1,906 line keys. The file reuses BaseballRefID TEX201604060 for two games
    # (April 5 and 6): a key from that column would have merged them; the game id does not.
    assert len(by_key) == 21
    assert {"MLB-20160405-SEA@TEX-1", "MLB-20160406-SEA@TEX-1"} <= by_key.keys()
    pub = ListPublisher()
    replay(pub, recs)
    assert pub.keys == [(r.key, r.event_time) for r in recs]
    assert [s[0] for s in pub.sent] == [r.event_id for r in recs]  # the event id stays file:line


def test_sbro_games_are_keyed_by_game_and_stamped_at_first_pitch(tmp_path: Path) -> None:
    recs = sbro_records(SBRO)
    assert len({r.key for r in recs}) == len(recs) == 2464  # a record is one game
    for r in recs[:50]:
        (g,) = parse(envelope(r)).games
        assert r.key == g["game_id"] and r.event_time == g["commence_time"]
    assert recs[0].event_time == datetime(2018, 3, 29, 23, 5, tzinfo=UTC)  # 19:05 New York
    lines = SBRO.read_text().splitlines()
    f = tmp_path / "sbro_2018.csv"
    f.write_text("\n".join([lines[0], lines[1], lines[3], lines[4]]) + "\n")  # V, V, H
    alone, game = sbro_records(f)
    assert alone.key == alone.event_id == "sbro_2018.csv:2"  # names no game: its own key
    assert game.key == "MLB-20180329-STL@NYM-1"


def test_a_row_naming_no_game_keeps_its_event_id_and_its_neighbours_time(tmp_path: Path) -> None:
    row = GAME + "0.0,A,B,1,4.0,{t},,,,-110,102,,,"
    f = pinnacle_file(
        tmp_path / "odd.csv",
        [
            row.format(t="2016-04-01 10:00:00+00:00"),
            row.format(t="not a time").replace("Pittsburgh Pirates", "Gotham Knights"),
        ],
    )
    good, odd = file_records(f)
    assert good.key == "MLB-20160403-STL@PIT-1"
    assert odd.key == odd.event_id == "odd.csv:3"
    assert odd.event_time == good.event_time == datetime(2016, 4, 1, 10, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_rich_bar_left_at_its_end() -> None:
    out = Terminal()
    p = Progress(4, "odd[1]{x}.csv", out)  # a file name is text, not markup or a format
    for i in range(1, 5):
        p.update(i)
    p.update(4, force=True)
    text = out.getvalue()
    assert "odd[1]{x}.csv" in text and "4/4" in text and "100%" in text and "rec/s" in text
    assert "\x1b[?25h" in text  # the cursor given back
    assert "#" not in text  # not the hand-drawn bar


def test_a_replay_that_fails_still_ends_its_bar() -> None:
    class Failing(ListPublisher):
        def close(self) -> PublishStats:
            raise RuntimeError("broker gone")

    out = Terminal()
    with pytest.raises(RuntimeError):
        replay(Failing(), [], progress=Progress(0, "h.jsonl", out))
    assert "\x1b[?25h" in out.getvalue()
