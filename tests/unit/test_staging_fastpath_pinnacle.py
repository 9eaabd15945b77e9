"""The Pinnacle hot path (streams/staging/fastpath_pinnacle.py) decides as the generic parser.

Every row runs through two processors, one with the hot paths and one without, and what they make
is compared: the encoded records and de-dup facts byte for byte, every dead letter (class,
reason, order), the counts. Rows go through the same two processors in sequence, so the hot
path's caches (header, game, market cells) are hit as in a backfill. Inputs: the real Pinnacle
capture, the benchmark's synthetic season, and generated rows with every kind of flaw (empty
cells, bad prices and points, ``.0`` suffixes, unknown and ambiguous teams, bad times,
doubleheaders, quoted cells, other headers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.backfill_stage import write_season
from core.domain.timeparse import TimeParseError, parse_utc
from core.formats.base import context_of
from producers.history import pinnacle_records
from schemas.codec import default_codec
from streams.staging.fastpath_pinnacle import PinnacleStager, row_time
from streams.staging.processor import Origin, StagingProcessor
from streams.staging.quality import timing_of
from tests.fixtures_path import PINNACLE
from tests.unit.test_staging_fastpath import summary

FETCHED = datetime(2016, 4, 3, 20, 30, tzinfo=UTC)
ENCODE = default_codec().encoder("oddsflow.raw.RawEnvelope")
DECODE = default_codec().decode
TOLERANCE = timedelta(minutes=10)
COLUMNS = (
    "BaseballRefID", "EventDateTimeUTC", "AwayTeam", "HomeTeam", "DoubleHeaderGame",
    "AwayStartingPitcher", "HomeStartingPitcher", "FinalScoreAway", "FinalScoreHome",
    "EnteredDateTimeUTC", "SpreadTeam1", "SpreadUS1", "SpreadUS2", "MoneyUS1", "MoneyUS2",
    "TotalPoints", "TotalUSOver", "TotalUSUnder",
)  # fmt: skip
OPTIONAL = ("AwayStartingPitcher", "HomeStartingPitcher", "FinalScoreAway", "FinalScoreHome")
ROW = dict(zip(COLUMNS, (
    "PIT201604030", "2016-04-03 20:05:00+00:00", "St. Louis Cardinals", "Pittsburgh Pirates",
    "0.0", "A WAINWRIGHT", "F LIRIANO", "1", "4.0", "2016-03-31 22:56:01.869999886+00:00",
    "1.5", "-164.0", "146.0", "-110.0", "102.0", "6.5", "106", "-117",
), strict=True))  # fmt: skip


def envelope(payload: bytes, header: str, n: int = 2, fetched: datetime = FETCHED) -> bytes:
    """A raw record as the file collector publishes a Pinnacle row."""
    request = {"format": "pinnacle", "header": header, "file": "x.csv", "line": str(n)}
    return ENCODE(
        {
            "event_id": f"x.csv:{n}", "source": "file", "fetched_at": fetched,
            "content_type": "text/csv", "payload": payload, "request": request,
        }
    )  # fmt: skip


def records_of(path: Path) -> list[bytes]:
    """The raw records ``oddsflow collect --source file`` makes of a Pinnacle file."""
    recs = pinnacle_records(path)
    return [envelope(r.payload, r.request["header"], int(r.request["line"])) for r in recs]


def staged_the_same(
    values: list[bytes],
    *,
    threshold: float | None = 0.8,
    now: datetime = FETCHED,
    published: datetime | None = None,
) -> int:
    """Stage ``values`` in order through a processor with the hot paths and one without,
    asserting they make exactly the same; returns how many rows the Pinnacle hot path took."""
    ms = None if published is None else int(published.timestamp() * 1000)
    fast = StagingProcessor(quality_threshold=threshold)
    generic = StagingProcessor(quality_threshold=threshold, fast_path=False)
    probe = PinnacleStager(default_codec())
    taken = 0
    for i, value in enumerate(values):
        origin = Origin("raw.odds.file", 3, 100 + i, b"k", ms)
        assert summary(fast.process(origin, value, now)) == summary(
            generic.process(origin, value, now)
        ), f"row {i}: {DECODE(value)['payload']!r}"
        env = DECODE(value)
        ctx = context_of(env)
        timing = timing_of(ctx.source, ctx.fetched_at, origin.published_at(), now)
        taken += probe.stage(env["payload"], ctx, now, TOLERANCE, threshold, timing) is not None
    return taken


@pytest.mark.parametrize("threshold", [0.8, 0.95, None])
def test_the_real_capture_is_staged_the_same(threshold: float | None) -> None:
    values = records_of(PINNACLE)
    taken = staged_the_same(values, threshold=threshold, now=datetime(2026, 1, 1, tzinfo=UTC))
    # all but the row with an implausible total (over 108 / under -101: 0.98)
    assert taken == len(values) - 1 == 1905


def test_the_bench_season_is_staged_the_same(tmp_path: Path) -> None:
    path = tmp_path / "season.csv"
    write_season(path, 2_000)
    values = records_of(path)
    assert staged_the_same(values, now=datetime(2026, 1, 1, tzinfo=UTC)) == len(values)


def test_refusals_and_quarantines_are_the_same() -> None:
    """A row after first pitch (scored), a game scheduled long after first pitch, flawed rows
    between clean ones of the same game (the caches are hit before and after them)."""
    header = ",".join(COLUMNS)

    def row(**cells: str) -> bytes:
        return ",".join({**ROW, **cells}.values()).encode()

    rows = [
        row(),
        row(EnteredDateTimeUTC="2016-04-03 20:10:00+00:00"),  # after first pitch
        row(FinalScoreHome="", EnteredDateTimeUTC="2016-04-03 22:10:00+00:00"),  # scheduled late
        row(MoneyUS1="50"),  # |price| < 100
        row(TotalUSOver=""),  # half a market
        row(SpreadTeam1="1.25"),  # off grid
        row(MoneyUS1="300", MoneyUS2="300"),  # implausible pair
        row(HomeTeam="New York"),  # ambiguous
        row(EnteredDateTimeUTC="2016-04-05 00:00:00+00:00"),  # future
        row(FinalScoreHome="-1"),
        row(AwayTeam='"St. Louis Cardinals"'),  # quoted: the csv module
        b"\xef\xbb\xbf" + row() + b"\r\n",
        row(),
    ]
    for threshold in (0.8, 0.9, None):
        values = [envelope(r, header, n) for n, r in enumerate(rows, start=2)]
        now = datetime(2016, 4, 4, tzinfo=UTC)
        assert staged_the_same(values, threshold=threshold, now=now) == 5


# -- generated rows -----------------------------------------------------------------------------

PRICES = ["", "-110.0", "102.0", "-110", "+120", " 146 ", "100", "-100", "EVEN", "50", "-219.5",
          "abc", "1e9", "300", "-300", "inf", "-101", "108"]  # fmt: skip
POINTS = ["", "1.5", "-1.5", "1.25", "-11.5", "PK", "x", "nan", "0", "-0.0", "6.5", "8", "40"]
CELLS: dict[str, list[str]] = {
    "BaseballRefID": ["PIT201604030", "", " X "],
    "EventDateTimeUTC": ["2016-04-03 20:05:00+00:00", "2016-04-03 20:05:00",
                         "2016-04-03T20:05:00Z", "", "soon", "2016-04-03 20:05:00+02:00",
                         "2016-04-04 02:10:00+00:00"],
    "AwayTeam": ["St. Louis Cardinals", "STL", "Gotham Knights", "New York", "Pittsburgh Pirates",
                 " st. louis cardinals ", '"St. Louis, MO"'],
    "HomeTeam": ["Pittsburgh Pirates", "PIT", "Los Angeles", ""],
    "DoubleHeaderGame": ["0.0", "0", "1", "2", "1.0", "2.0", "3", "", "x", "-1"],
    "AwayStartingPitcher": ["A WAINWRIGHT", "", " F LIRIANO "],
    "HomeStartingPitcher": ["F LIRIANO", ""],
    "FinalScoreAway": ["1", "4.0", "", "-1", "x", "3.5", "0", "99999999999"],
    "FinalScoreHome": ["4.0", "2", ""],
    "EnteredDateTimeUTC": ["2016-03-31 21:16:48.046999931+00:00", "2016-04-03 20:10:00+00:00",
                           "2016-04-03 22:10:00+00:00", "", "bad", "2016-04-03 20:45:00+00:00",
                           "2016-03-31 21:16:48", "2016-04-01T09:00:00Z"],
    "SpreadTeam1": POINTS, "SpreadUS1": PRICES, "SpreadUS2": PRICES, "MoneyUS1": PRICES,
    "MoneyUS2": PRICES, "TotalPoints": POINTS, "TotalUSOver": PRICES, "TotalUSUnder": PRICES,
}  # fmt: skip


@st.composite
def header_columns(draw: st.DrawFn) -> list[str]:
    """The fixture's columns, or reordered, without optional ones, missing or repeating one."""
    cols = list(COLUMNS)
    kind = draw(st.sampled_from(["plain", "plain", "shuffled", "lean", "missing", "repeated"]))
    if kind == "shuffled":
        cols = draw(st.permutations(cols))
    elif kind == "lean":
        cols = [c for c in cols if c not in OPTIONAL]
    elif kind == "missing":
        cols.remove(draw(st.sampled_from(cols)))
    elif kind == "repeated":
        cols.append(draw(st.sampled_from(cols)))
    return cols


@st.composite
def pinnacle_row(draw: st.DrawFn, cols: list[str]) -> bytes:
    """A row of ``cols``: the sample row with some cells flawed, and sometimes the row's text."""
    cells = dict(ROW)
    for col in draw(st.lists(st.sampled_from(COLUMNS), max_size=4)):
        cells[col] = draw(st.sampled_from(CELLS[col]))
    text = ",".join(cells.get(c, "") for c in cols)
    mangle = draw(st.sampled_from(["", "", "", "bom", "crlf", "extra", "short", "newline"]))
    if mangle == "bom":
        text = "\ufeff" + text
    elif mangle == "crlf":
        text += "\r\n"
    elif mangle == "extra":
        text += ","
    elif mangle == "short":
        text = text.rsplit(",", 1)[0]
    elif mangle == "newline":
        text = text.replace(",", "\n,", 1)
    return text.encode()


GENERATED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GENERATED
@given(data=st.data())
def test_generated_rows_with_flaws_are_staged_the_same(data: st.DataObject) -> None:
    cols = data.draw(header_columns())
    header = ",".join(cols)
    if data.draw(st.integers(0, 9)) == 0:
        header = data.draw(st.sampled_from(["\ufeff" + header, header.replace(
            "AwayTeam", '"AwayTeam"'), header + "\r\n", ""]))  # fmt: skip
    rows = data.draw(st.lists(pinnacle_row(cols), min_size=1, max_size=6))
    values = [envelope(r, header, n) for n, r in enumerate(rows, start=2)]
    staged_the_same(
        values,
        threshold=data.draw(st.sampled_from([0.8, 0.9, None])),
        now=data.draw(st.sampled_from([FETCHED, FETCHED + timedelta(days=1)])),
        published=data.draw(st.sampled_from([None, FETCHED + timedelta(hours=2)])),
    )


digits = st.text(alphabet="0123456789", min_size=0, max_size=12)


@settings(max_examples=500, deadline=None)
@given(
    date=st.sampled_from(["2016-03-31 21:16:48", "2016-02-30 21:16:48", "2016-03-31T21:16:48",
                          " 2016-03-31 21:16:4", "2016.03-31 21:16:48", "2016-03-31 25:16:48"]),
    fraction=st.one_of(digits, st.sampled_from(["0469999³1", "٣٤٥", "12 ", "1.2"])),
    zone=st.sampled_from(["+00:00", "+02:00", "Z", "", "+00:00 ", "+0000"]),
    lead=st.sampled_from(["", " ", "\u2003"]),
)  # fmt: skip
def test_row_time_is_parse_utc(date: str, fraction: str, zone: str, lead: str) -> None:
    """The file's time stamps are read without parse_utc's memo, to the same instant (or the
    same refusal)."""
    cell = f"{lead}{date}.{fraction}{zone}"
    try:
        expected: object = parse_utc(cell, assume_utc=True)
    except TimeParseError:
        expected = TimeParseError
    try:
        got: object = row_time(cell)
    except (TimeParseError, ValueError):
        got = TimeParseError
    assert got == expected
    if isinstance(got, datetime):
        assert got.tzinfo is UTC
