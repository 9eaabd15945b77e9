"""Canonical game ids, schedule dates, timestamps and book keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.domain.books import (
    BookError,
    action_network_book,
    canonical_book,
    is_aggregate,
    lookup_book,
)
from core.domain.games import game_id, game_id_for_date, schedule_date, split_game_id
from core.domain.timeparse import TimeParseError, from_micros, parse_utc


@pytest.mark.parametrize(
    ("commence", "away", "home", "n", "expected"),
    [
        (datetime(2016, 4, 3, 20, 5, tzinfo=UTC), "STL", "PIT", 1, "MLB-20160403-STL@PIT-1"),
        # 02:10 UTC is 22:10 the previous evening in New York
        (datetime(2025, 6, 14, 2, 10, tzinfo=UTC), "SF", "LAD", 1, "MLB-20250613-SF@LAD-1"),
        (datetime(2025, 6, 14, 3, 59, tzinfo=UTC), "SF", "LAD", 1, "MLB-20250613-SF@LAD-1"),
        (datetime(2025, 6, 14, 4, 0, tzinfo=UTC), "SF", "LAD", 1, "MLB-20250614-SF@LAD-1"),
        # winter: New York is UTC-5
        (datetime(2025, 3, 1, 4, 59, tzinfo=UTC), "NYY", "TOR", 1, "MLB-20250228-NYY@TOR-1"),
        (datetime(2025, 3, 1, 5, 0, tzinfo=UTC), "NYY", "TOR", 1, "MLB-20250301-NYY@TOR-1"),
        # doubleheader second game
        (datetime(2018, 4, 1, 21, 0, tzinfo=UTC), "PIT", "DET", 2, "MLB-20180401-PIT@DET-2"),
        # any offset works, the date is taken in New York
        (
            datetime(2016, 4, 3, 22, 5, tzinfo=timezone(timedelta(hours=2))),
            "STL", "PIT", 1, "MLB-20160403-STL@PIT-1",
        ),
    ],
)  # fmt: skip
def test_game_id(commence: datetime, away: str, home: str, n: int, expected: str) -> None:
    assert game_id(commence, away, home, n) == expected
    d, a, h, num = split_game_id(expected)
    assert (a, h, num) == (away, home, n)
    assert d == schedule_date(commence)


@pytest.mark.parametrize(
    ("commence", "away", "home", "n"),
    [
        (datetime(2016, 4, 3, 20, 5), "STL", "PIT", 1),  # naive
        (datetime(2016, 4, 3, 20, 5, tzinfo=UTC), "LOS", "PIT", 1),  # not canonical
        (datetime(2016, 4, 3, 20, 5, tzinfo=UTC), "PIT", "PIT", 1),
        (datetime(2016, 4, 3, 20, 5, tzinfo=UTC), "STL", "PIT", 0),
    ],
)
def test_game_id_refuses(commence: datetime, away: str, home: str, n: int) -> None:
    with pytest.raises(ValueError):
        game_id(commence, away, home, n)


def test_game_id_for_date_and_bad_ids() -> None:
    assert game_id_for_date(date(2018, 3, 29), "CHC", "MIA") == "MLB-20180329-CHC@MIA-1"
    for bad in ("NFL-20180329-CHC@MIA-1", "MLB-20180329-CHCMIA-1", "MLB-20180329-XXX@MIA-1"):
        with pytest.raises(ValueError):
            split_game_id(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-24T16:31:14Z", datetime(2024, 5, 24, 16, 31, 14, tzinfo=UTC)),
        ("2025-06-13T18:20:00.000Z", datetime(2025, 6, 13, 18, 20, tzinfo=UTC)),
        ("2016-03-31 21:16:48.046999931+00:00", datetime(2016, 3, 31, 21, 16, 48, 46999, UTC)),
        ("2025-06-13T14:20:00-04:00", datetime(2025, 6, 13, 18, 20, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_parse_utc(raw: str, expected: datetime) -> None:
    got = parse_utc(raw)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("raw", ["", "yesterday", "2025-13-01T00:00:00Z", "2025-06-13 18:20", 17])
def test_parse_utc_refuses(raw: object) -> None:
    with pytest.raises(TimeParseError) as exc:
        parse_utc(raw)
    assert exc.value.error_class == "bad_timestamp"


def test_parse_utc_naive_only_when_told() -> None:
    assert parse_utc("2016-04-03 20:05:00", assume_utc=True) == datetime(
        2016, 4, 3, 20, 5, tzinfo=UTC
    )
    assert parse_utc(datetime(2016, 4, 3), assume_utc=True).tzinfo is UTC
    with pytest.raises(TimeParseError):
        parse_utc(datetime(2016, 4, 3))
    assert from_micros(1_000_000) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "book"),
    [
        ("draftkings", "draftkings"), ("fanduel", "fanduel"), ("betmgm", "betmgm"),
        ("BetMGM", "betmgm"), ("williamhill_us", "caesars"), ("caesars", "caesars"),
        ("Caesars Sportsbook", "caesars"), ("DraftKings Sportsbook", "draftkings"),
        ("unibet_us", "unibet"), ("betonlineag", "betonline"), ("mybookieag", "mybookie"),
        ("pinnacle", "pinnacle"), ("bet365", "bet365"), ("Fanatics Sportsbook", "fanatics"),
        ("lowvig", "lowvig"), ("LowVig.ag", "lowvig"), ("superbook", "superbook"),
    ],
)  # fmt: skip
def test_canonical_book(raw: str, book: str) -> None:
    assert canonical_book(raw) == book
    assert lookup_book(raw) == book


def test_book_pass_through_and_refusals() -> None:
    assert canonical_book("newbook_us") == "newbook_us"  # Odds API slug namespace
    with pytest.raises(BookError):
        canonical_book("New Book!")
    with pytest.raises(BookError):
        canonical_book("newbook_us", pass_through=False)
    with pytest.raises(BookError):
        canonical_book(None)


@pytest.mark.parametrize(
    ("book_id", "book"),
    [(15, "consensus"), ("30", "open"), (68, "draftkings"), ("69", "fanduel"), (75, "betmgm")],
)
def test_action_network_books(book_id: object, book: str) -> None:
    assert action_network_book(book_id) == book
    assert is_aggregate(book) is (book in ("consensus", "open"))


@pytest.mark.parametrize("bad", [4242, "x", None])
def test_action_network_unknown_books(bad: object) -> None:
    with pytest.raises(BookError) as exc:
        action_network_book(bad)
    assert exc.value.error_class == "unknown_book"
