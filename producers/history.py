"""Replay of recorded histories: Pinnacle line-history CSV, SBRO open/close CSV, JSON lines.

Records are published in event-time order (a stable sort: rows with the same time keep their
file order), as fast as possible or at a speed-up factor. What each record is, and why:

- pinnacle: one envelope per CSV row, ordered by EnteredDateTimeUTC (``request["header"]``
  carries the header line the staging parser needs).
- sbro: one envelope per game = its visitor and home rows joined by "\\n" (``V`` then ``H``, or
  two ``N`` rows of a neutral-site game, the second the home team); ordered by Date
  (MDD of the season, the season from ``--season`` or the 4-digit year in the file name); the
  second game with the same date and teams gets ``game_number`` 2 (doubleheaders).
- jsonl: one envelope per line, each line an archived raw envelope, ordered by its fetched_at.

The payload is the file's bytes for that row, verbatim: odd rows (empty prices, ``.0`` suffixes,
repeated timestamps, unpaired SBRO rows) are published raw for the staging validators to judge,
never fixed or dropped. A row whose time cannot be read keeps the time of the row before it, so
it stays next to its neighbours. Event id = ``<file name>:<line number(s)>`` (line 1 = header):
replaying a file twice produces the same ids, which the raw sink stores once.
"""

from __future__ import annotations

import gzip
import json
import re
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

from rich import progress as rich_progress
from rich.console import Console

from core.formats import pinnacle, sbro
from core.formats.base import ParseError
from core.formats.csvrow import row_dict
from producers.publisher import Publisher, PublishStats

FORMATS = ("pinnacle", "sbro", "jsonl")


@dataclass(frozen=True)
class FileRecord:
    """One envelope to publish: its id, payload bytes, request metadata, event time and key."""

    event_id: str
    payload: bytes
    request: dict[str, str]
    event_time: datetime | None
    content_type: str = "text/csv"
    key: str | None = None  # the Kafka key: the game's id where the record is one game's


class HistoryFileError(SystemExit):
    """A history file that cannot be replayed: one line on stderr and exit status 1, never a
    traceback (``SystemExit`` with a message prints it and exits 1)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"oddsflow: cannot replay {path}: {why}")


GZIP_MAGIC = b"\x1f\x8b"


def read_history(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip (by content: the data sets ship as
    ``.csv.gz``, and a renamed file is still read)."""
    try:
        if path.is_dir():
            raise HistoryFileError(path, "it is a directory")
        data = path.read_bytes()
    except FileNotFoundError:
        raise HistoryFileError(path, "no such file") from None
    except PermissionError:
        raise HistoryFileError(path, "permission denied") from None
    except OSError as exc:
        raise HistoryFileError(path, exc.strerror or str(exc)) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise HistoryFileError(path, f"corrupt gzip data ({exc})") from None
    if not data.strip():
        raise HistoryFileError(path, "it is empty")
    return data


def _lines(data: bytes) -> list[bytes]:
    """The file's lines without their line endings (bytes: payloads stay verbatim)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def _history_lines(path: Path, lines: list[bytes] | None) -> list[bytes]:
    return lines if lines is not None else _lines(read_history(path))


def _header(path: Path, lines: list[bytes]) -> str:
    """The first line as text; a file that is not UTF-8 text is no history we know."""
    try:
        return lines[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HistoryFileError(path, "not a CSV or JSON-lines text file (not UTF-8)") from None


def detect_format(path: Path, lines: list[bytes] | None = None) -> str:
    """pinnacle / sbro from the CSV header, jsonl from the extension (``.gz`` ignored)."""
    if path.name.removesuffix(".gz").endswith((".jsonl", ".ndjson")):
        return "jsonl"
    header = _header(path, _history_lines(path, lines))
    if "EnteredDateTimeUTC" in header:
        return "pinnacle"
    if "VH" in [c.strip() for c in header.split(",")]:
        return "sbro"
    if header.lstrip().startswith("{"):
        return "jsonl"
    raise HistoryFileError(
        path, f"unknown format (first line {header[:60]!r}); pass --format {'|'.join(FORMATS)}"
    )


def _parse_time(text: str) -> datetime | None:
    from core.domain.timeparse import TimeParseError, parse_utc

    try:
        return parse_utc(text.strip(), assume_utc=True)
    except (TimeParseError, ValueError, TypeError):
        return None


def _fill_times(times: list[datetime | None]) -> list[datetime | None]:
    """A row without a readable time takes its predecessor's, so it keeps its neighbours."""
    out: list[datetime | None] = []
    last: datetime | None = None
    for t in times:
        last = t if t is not None else last
        out.append(last)
    first = next((t for t in out if t is not None), None)
    return [t if t is not None else first for t in out]


def _event_order(records: list[FileRecord]) -> list[FileRecord]:
    """Stable sort by event time; a record without one takes its neighbour's (see _fill_times)."""
    times = _fill_times([r.event_time for r in records])
    if all(t is None for t in times):
        return records
    floor = datetime.min.replace(tzinfo=UTC)
    order = sorted(range(len(records)), key=lambda i: times[i] or floor)  # stable
    return [
        records[i]
        if records[i].event_time is not None
        else replace(records[i], event_time=times[i])
        for i in order
    ]


def pinnacle_records(path: Path, lines: list[bytes] | None = None) -> list[FileRecord]:
    lines = _history_lines(path, lines)
    header = _header(path, lines)
    cols = [c.strip() for c in header.split(",")]
    at = cols.index("EnteredDateTimeUTC") if "EnteredDateTimeUTC" in cols else None
    out = []
    game_of = _PinnacleGames(header)
    for n, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", "replace")
        cells = text.split(",")
        t = _parse_time(cells[at]) if at is not None and at < len(cells) else None
        req = {"format": "pinnacle", "header": header, "file": path.name, "line": str(n)}
        eid = f"{path.name}:{n}"
        out.append(FileRecord(eid, raw, req, t, key=game_of(text, cells) or eid))
    return _event_order(out)


class _PinnacleGames:
    """A row's game id as staging computes it (``pinnacle.row_game``), remembered per
    (first pitch, away, home, doubleheader) cells: a game's rows repeat them (13 µs a row
    otherwise, 3 s of a 241k-row season). None for a row naming no game staging reads: staging
    refuses it whole, so no game's order depends on where it goes."""

    FIELDS = ("EventDateTimeUTC", "AwayTeam", "HomeTeam", "DoubleHeaderGame")

    def __init__(self, header: str) -> None:
        self.header = header
        cols = [c.strip() for c in header.split(",")]
        self.at = [cols.index(f) if f in cols else -1 for f in self.FIELDS]
        self.width = len(cols)
        self.memo: dict[tuple[str, ...], str | None] = {}

    def __call__(self, text: str, cells: list[str]) -> str | None:
        plain = '"' not in text and len(cells) == self.width and -1 not in self.at
        memo_key = tuple(cells[i] for i in self.at) if plain else None
        if memo_key is not None and memo_key in self.memo:
            return self.memo[memo_key]
        try:
            row = row_dict(text, self.header, pinnacle.REQUIRED)
            game: str | None = pinnacle.row_game(row, "")[0].game_id
        except ParseError:
            game = None
        if memo_key is not None:
            self.memo[memo_key] = game
        return game


def _season(path: Path, season: str | None) -> str:
    if season:
        return season
    m = re.search(r"(?<!\d)(19|20)\d\d(?!\d)", path.name)
    if not m:
        raise SystemExit(f"oddsflow: no season year in {path.name}; pass --season")
    return m.group(0)


def _sbro_time(cell: str, season: str) -> datetime | None:
    """The game's nominal first pitch (19:05 New York): the time of its closing prices."""
    cell = cell.strip()
    if not cell.isdigit() or len(cell) not in (3, 4):
        return None
    try:
        day = date(int(season), int(cell[:-2]), int(cell[-2:]))
    except ValueError:
        return None
    return sbro.nominal_times(day)[0]


def _sbro_game(payload: bytes, header: str, season: str, game_number: str) -> str | None:
    """The game id staging computes for a record; None when it names no game (refused whole)."""
    try:
        text = payload.decode("utf-8", "replace")
        return sbro.read_game(text, header, season, game_number)[2].game_id
    except ParseError:
        return None


def sbro_records(
    path: Path, season: str | None = None, lines: list[bytes] | None = None
) -> list[FileRecord]:
    """Pairs a V row with the H row after it (or two N rows); a row that does not pair is
    published alone."""
    lines = _history_lines(path, lines)
    header = _header(path, lines)
    cols = [c.strip() for c in header.split(",")]
    i_date, i_vh, i_team = (cols.index(c) if c in cols else -1 for c in ("Date", "VH", "Team"))
    year = _season(path, season)

    def cell(cells: list[str], i: int) -> str:
        return cells[i].strip() if 0 <= i < len(cells) else ""

    rows = [
        (n, raw, raw.decode("utf-8", "replace").split(","))
        for n, raw in enumerate(lines[1:], start=2)
        if raw.strip()
    ]
    seen: Counter[tuple[str, str, str]] = Counter()
    out: list[FileRecord] = []
    i = 0
    while i < len(rows):
        n, raw, cells = rows[i]
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        paired = (
            nxt is not None
            and (cell(cells, i_vh), cell(nxt[2], i_vh)) in sbro.PAIRS
            and cell(cells, i_date) == cell(nxt[2], i_date)
        )
        req = {"format": "sbro", "header": header, "season": year, "file": path.name}
        if paired:
            assert nxt is not None
            teams = (cell(cells, i_date), cell(cells, i_team), cell(nxt[2], i_team))
            seen[teams] += 1
            req.update(line=f"{n}-{nxt[0]}", game_number=str(seen[teams]))
            payload, eid = raw + b"\n" + nxt[1], f"{path.name}:{n}-{nxt[0]}"
            i += 2
        else:
            req["line"] = str(n)
            payload, eid = raw, f"{path.name}:{n}"
            i += 1
        key = _sbro_game(payload, header, year, req["game_number"]) if paired else None
        when = _sbro_time(cell(cells, i_date), year)
        out.append(FileRecord(eid, payload, req, when, key=key or eid))
    return _event_order(out)


def jsonl_records(path: Path, lines: list[bytes] | None = None) -> list[FileRecord]:
    out = []
    for n, raw in enumerate(_history_lines(path, lines), start=1):
        if not raw.strip():
            continue
        t = None
        try:
            doc = json.loads(raw)
            fetched = doc.get("fetched_at") if isinstance(doc, dict) else None
            if isinstance(fetched, int):
                t = datetime.fromtimestamp(fetched / 1e6, UTC)
            elif isinstance(fetched, str):
                t = _parse_time(fetched)
        except (ValueError, OverflowError, OSError, RecursionError):
            pass  # an unreadable line is published as it is: staging judges it
        req = {"format": "jsonl", "file": path.name, "line": str(n)}
        out.append(FileRecord(f"{path.name}:{n}", raw, req, t, "application/json"))
    return _event_order(out)


def file_records(path: Path, fmt: str | None = None, season: str | None = None) -> list[FileRecord]:
    """Every record of a history file (plain or gzipped), in event-time order; a file that
    cannot be read raises :class:`HistoryFileError` (one line, exit status 1)."""
    lines = _lines(read_history(path))
    fmt = fmt or detect_format(path, lines)
    if fmt == "pinnacle":
        return pinnacle_records(path, lines)
    if fmt == "sbro":
        return sbro_records(path, season, lines)
    if fmt == "jsonl":
        return jsonl_records(path, lines)
    raise HistoryFileError(path, f"unknown file format {fmt!r} (one of {', '.join(FORMATS)})")


def parse_speed(text: str | None) -> float | None:
    """``60x`` / ``60`` → 60.0; None, ``max`` or ``0`` → as fast as possible."""
    if text is None or text.strip().lower() in ("", "max", "0", "0x"):
        return None
    value = float(text.strip().lower().rstrip("x"))
    if value <= 0:
        raise ValueError(f"speed must be positive, got {text!r}")
    return value


class Progress:
    """A file replay's progress on stderr: on a terminal a ``rich`` bar (as every command's,
    :mod:`oddsflow.console`), left at its last state when done; elsewhere (a log, a pipe) a
    plain line per tenth of the file, not a carriage-return storm. ``update`` is called per
    record and does work at most 5 times a second; ``force`` is the last call."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last = 0.0
        self._last_tenth = -1
        console = Console(file=self.stream)
        self._bar: rich_progress.Progress | None = None
        if console.is_terminal:
            self._bar = rich_progress.Progress(
                rich_progress.TextColumn("{task.description}", markup=False),
                rich_progress.BarColumn(), rich_progress.MofNCompleteColumn(),
                rich_progress.TaskProgressColumn(), rich_progress.TextColumn("{task.fields[rate]}"),
                rich_progress.TimeElapsedColumn(), console=console,
            )  # fmt: skip
            self._task = self._bar.add_task(label, total=total or None, rate="")
            self._bar.start()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        rate = f"{done / max(now - self.started, 1e-9):,.0f} rec/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=rate)
            if force:
                self._bar.stop()
            return
        tenth = int(frac * 10)
        if tenth == self._last_tenth and not force:
            return
        self._last_tenth = tenth
        bar = "#" * int(frac * 30)
        self.stream.write(f"{self.label} [{bar:<30}] {done}/{self.total} {frac:4.0%} {rate}\n")
        self.stream.flush()


@dataclass
class ReplayResult:
    stats: PublishStats
    total: int
    sent: int
    stopped: bool
    seconds: float


def replay(
    publisher: Publisher,
    records: list[FileRecord],
    speed: float | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReplayResult:
    """Publish ``records`` in order; at ``speed``× event time if given; stop early when ``stop``.

    Always closes (flushes) the publisher: the stats count only broker-acknowledged records.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    t0 = next((r.event_time for r in records if r.event_time is not None), None)
    sent = 0
    try:
        for rec in records:
            if stop.is_set():
                break
            if speed is not None and t0 is not None and rec.event_time is not None:
                due = started + (rec.event_time - t0).total_seconds() / speed
                while not stop.is_set() and (wait := due - time.monotonic()) > 0:
                    publisher.poll(min(wait, 0.1))  # serve delivery reports while waiting
                if stop.is_set():
                    break
            publisher.publish(
                rec.event_id, rec.payload, now(), rec.content_type, rec.request,
                key=rec.key, timestamp=rec.event_time,
            )  # fmt: skip
            sent += 1
            if progress is not None:
                progress.update(sent)
    finally:
        try:
            stats = publisher.close()
        finally:  # the last state, and a terminal's cursor back, whatever happened
            if progress is not None:
                progress.update(sent, force=True)
    return ReplayResult(stats, len(records), sent, stop.is_set(), time.monotonic() - started)


def run_replay(
    publisher: Publisher,
    records: list[FileRecord],
    speed: float | None = None,
    show_progress: bool = True,
    label: str = "replay",
) -> ReplayResult:
    """:func:`replay` with SIGINT/SIGTERM turned into a clean stop (flush, then report)."""
    stop = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return replay(
            publisher,
            records,
            speed,
            Progress(len(records), label) if show_progress else None,
            stop,
        )
    finally:
        for s, h in old.items():
            signal.signal(s, h)
