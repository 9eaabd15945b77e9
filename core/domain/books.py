"""Bookmaker keys in one naming across sources.

The base naming is The Odds API's bookmaker keys with the region suffix and the brand history
removed (``williamhill_us`` -> ``caesars``, ``unibet_us`` -> ``unibet``, ``betonlineag`` ->
``betonline``): lower-case ASCII, no spaces. SBD ``_id``/``name``/``displayName`` and Action
Network numeric book ids map onto it. Aggregates are not books: ``consensus`` (a source's
average across books) and ``open`` (Action Network's opening line) are reported as such so that
cross-book features never count them as a book.
"""

from __future__ import annotations

from typing import Final

UNKNOWN_BOOK: Final = "unknown_book"
CONSENSUS: Final = "consensus"
OPEN: Final = "open"
AGGREGATES: Final = frozenset({CONSENSUS, OPEN})

BOOKS: Final[frozenset[str]] = frozenset(
    {
        "draftkings", "fanduel", "betmgm", "caesars", "pinnacle", "bet365", "fanatics",
        "betrivers", "unibet", "pointsbet", "espnbet", "barstool", "wynnbet", "superbook",
        "bovada", "betonline", "lowvig", "mybookie", "betus", "hardrockbet", "betparx",
        "ballybet", "fliff", "circasports", "sugarhouse", "twinspires", "foxbet", "betway",
        "tipico", "betfair", "sbro",
    }
)  # fmt: skip

# Normalized alias (see _key) -> canonical key.
ALIASES: Final[dict[str, str]] = {
    # The Odds API keys that differ from ours
    "williamhillus": "caesars", "williamhill": "caesars", "unibetus": "unibet",
    "pointsbetus": "pointsbet", "betonlineag": "betonline", "mybookieag": "mybookie",
    "betfairexus": "betfair", "betfairex": "betfair", "tipicous": "tipico",
    "circa": "circasports", "lowvigag": "lowvig", "betusag": "betus",
    # Display names / titles (Odds API title, SBD displayName)
    "caesarssportsbook": "caesars", "williamhillsportsbook": "caesars",
    "draftkingssportsbook": "draftkings", "fanduelsportsbook": "fanduel",
    "fanaticssportsbook": "fanatics", "betmgmsportsbook": "betmgm", "mgm": "betmgm",
    "hardrock": "hardrockbet", "hardrocksportsbook": "hardrockbet", "espn": "espnbet",
    "wynn": "wynnbet", "westgatesuperbook": "superbook", "pinnaclesports": "pinnacle",
    "dk": "draftkings", "fd": "fanduel",
}  # fmt: skip

# Action Network book ids known to us (15 = their consensus line, 30 = their opening line).
ACTION_NETWORK_BOOK_IDS: Final[dict[int, str]] = {
    15: CONSENSUS, 30: OPEN, 68: "draftkings", 69: "fanduel", 75: "betmgm", 79: "bet365",
    123: "caesars",
}  # fmt: skip


class BookError(ValueError):
    """A book that cannot be named; ``error_class`` is the dead-letter class."""

    error_class = UNKNOWN_BOOK

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(raw: str) -> str:
    return "".join(ch for ch in raw.casefold() if ch.isalnum())


_TABLE: dict[str, str] = {_key(b): b for b in BOOKS | AGGREGATES}
_TABLE.update(ALIASES)
_MEMO: dict[str, str | None] = {}


def lookup_book(raw: object) -> str | None:
    """Canonical key of a book name/key/title, or None when we do not know it."""
    if type(raw) is not str:
        return None
    if raw in _MEMO:
        return _MEMO[raw]  # type: ignore[index]
    hit = _TABLE.get(_key(raw))  # type: ignore[arg-type]
    if len(_MEMO) < 4096:
        _MEMO[raw] = hit  # type: ignore[index]
    return hit


def canonical_book(raw: object, *, pass_through: bool = True) -> str:
    """Canonical key of a book; unknown slugs pass through lower-cased when allowed.

    Pass-through is for sources whose keys already are a slug namespace (Odds API, SBD): a new
    book there is a new book, not an error. Without it an unknown name raises BookError.
    """
    hit = lookup_book(raw)
    if hit is not None:
        return hit
    if pass_through and type(raw) is str:
        slug = raw.strip().casefold()  # type: ignore[union-attr]
        if slug and all(ch.isalnum() or ch == "_" for ch in slug) and slug.isascii():
            return slug
    raise BookError(f"book {raw!r} is not known")


def action_network_book(book_id: object) -> str:
    """Canonical key of an Action Network book id; raises BookError for ids we do not know."""
    try:
        hit = ACTION_NETWORK_BOOK_IDS.get(int(book_id))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        hit = None
    if hit is None:
        raise BookError(f"Action Network book id {book_id!r} is not known")
    return hit


def is_aggregate(book: str) -> bool:
    """True for consensus/open: they are not books and carry no price of their own."""
    return book in AGGREGATES
