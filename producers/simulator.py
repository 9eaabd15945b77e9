"""A market simulator: games × books × markets of realistic American prices, deterministic per seed.

Each book quotes moneyline, run line (spread) and total with a vig, drifting with the market's
true probability and sometimes jumping. The jumps are real steam moves (every book follows within
a few ticks) that nobody labels: a ground-truth run (``producers/simulator_truth.py``) switches
them off (``market_jumps=False``) and quietens the drift (``volatility``), so that only its
injected, labelled events meet the feature definitions.
Every tick, every book publishes a snapshot in The Odds API v4 event shape (one event, one
bookmaker), unchanged prices included, as a real poller would: the staging zone's
de-duplication is what turns snapshots into price changes.
``scripted_jumps`` move one book's home moneyline by a known number of cents at a known tick, so
tests can assert exact curated values.

One run, three views, all from ``_walk`` (the only place random numbers are drawn, in one
order): ``quotes()`` (prices), ``envelopes()`` (event id, payload, fetch time) and
``records(layout)`` (Kafka key, encoded RawEnvelope), which the collector publishes. The last
exists for speed (issue #4: 100k records/s from one process, generation included): it makes
byte for byte what ``envelopes()`` through the codec makes, three to four times as fast.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from core.domain.teams import CODES, FULL_NAMES
from producers.envelope import EnvelopeLayout, varint

#: The Odds API keys of 20 distinct real books. Distinct after canonicalisation
#: (``core.domain.books``): ``williamhill`` was here beside ``caesars``, staging rightly maps
#: both to one book, and its de-dup then flipped between two books' prices.
BOOKS = (
    "pinnacle", "draftkings", "fanduel", "betmgm", "caesars", "bet365", "pointsbet",
    "betrivers", "wynnbet", "circa", "bovada", "mybookie", "betonline", "unibet", "barstool",
    "superbook", "betway", "hardrockbet", "espnbet", "fanatics",
)  # fmt: skip
_PRICE_SLOTS = ("hml", "aml", "hsp", "asp", "op", "up")  # the payload's prices that move
TS_LEN = len("2026-04-01T17:00:00Z")
NAME_OF: dict[str, str] = {}
for _name, _code in FULL_NAMES.items():
    NAME_OF.setdefault(_code, _name)


def prob_to_american(p: float) -> int:
    """Fair-ish American price of probability ``p`` (0 < p < 1), |a| ≥ 100."""
    if p >= 0.5:
        a = -round(100 * p / (1 - p))
        return min(a, -100)
    return max(round(100 * (1 - p) / p), 100)


def shift_cents(american: int, cents: int) -> int:
    """Move a price by ``cents`` on the continuous scale (−105 + 10 → +105)."""
    c = (american - 100 if american >= 100 else american + 100) + cents
    return c + 100 if c >= 0 else c - 100


@dataclass(frozen=True)
class ScriptedJump:
    game: int  # game index
    book: str
    tick: int
    cents: int  # moves the home moneyline; negative = money on home
    # Move the away moneyline the other way too, as a book moving its line keeps its hold
    # (moving one side only changes the hold: a long grind would drive it below zero).
    both_sides: bool = False


class Quote(NamedTuple):
    """One book's prices for one game at one tick (a tuple: millions are made per season)."""

    game: int
    book: str
    tick: int
    at: datetime
    home_ml: int
    away_ml: int
    home_spread: float
    home_spread_price: int
    away_spread_price: int
    total: float
    over_price: int
    under_price: int


@dataclass
class Game:
    index: int
    home: str
    away: str
    commence: datetime
    event_id: str


Prices = tuple[int, int, float, int, int, int, int]  # hml, aml, hs, hsp, asp, op, up


@dataclass
class _Book:
    bias: float
    vig: float
    p: float
    o: float
    home_favourite: bool
    shift: int = 0
    away_shift: int = 0
    # Prices are derived again only when p, o or a shift was assigned (``dirty``), and ``memo``
    # is replaced only when they differ: most books keep their prices most ticks, and the
    # identity of ``memo`` says "unchanged, nothing to render again".
    dirty: bool = True
    memo: Prices = (0, 0, 0.0, 0, 0, 0, 0)
    # the last rendered envelope pieces (see Simulator.records) and the memo they render
    rendered_memo: Prices | None = None
    rendered: list[bytes] = field(default_factory=list)
    # prices per rounded probability (home side and run line) and per rounded total probability
    by_p: dict[float, tuple[int, int, int, int]] = field(default_factory=dict)
    by_o: dict[float, tuple[int, int]] = field(default_factory=dict)

    def prices(self) -> Prices:
        """(home ml, away ml, home spread, its price, away's price, over, under)."""
        if self.dirty:
            self.dirty = False
            prices = _prices(self)
            if prices != self.memo:
                self.memo = prices
        return self.memo


def _prices(s: _Book) -> Prices:
    """The book's prices, from its probability rounded to 0.001 and its total's to 0.01.

    The rounded values are few (at most 701 and 21 a book) and a random walk revisits them, so
    each side's prices are remembered per value: most changes of a book are then two lookups.
    """
    p = min(0.85, max(0.15, round(s.p, 3)))
    sides = s.by_p.get(p)
    if sides is None:
        half_vig = s.vig / 2
        cover = min(0.8, max(0.2, round((p - 0.18) if s.home_favourite else (p + 0.18), 2)))
        sides = s.by_p[p] = (
            prob_to_american(p + half_vig), prob_to_american(1 - p + half_vig),
            prob_to_american(cover + half_vig), prob_to_american(1 - cover + half_vig),
        )  # fmt: skip
    o = round(s.o, 2)
    totals = s.by_o.get(o)
    if totals is None:
        half_vig = s.vig / 2
        totals = s.by_o[o] = (prob_to_american(o + half_vig), prob_to_american(1 - o + half_vig))
    home, away, home_spread_price, away_spread_price = sides
    home_ml = shift_cents(home, s.shift)
    # shift_cents(-100, 0) is +100: only shift the away side when there is a shift
    away_ml = shift_cents(away, s.away_shift) if s.away_shift else away
    home_spread = -1.5 if s.home_favourite else 1.5  # the run line is set at the open
    return (home_ml, away_ml, home_spread, home_spread_price, away_spread_price, *totals)


@dataclass
class _Market:
    """The true state of one game's market, which every book follows with its own bias."""

    rng: random.Random
    p_home: float
    p_over: float
    total: float
    books: dict[str, _Book]

    @classmethod
    def open(cls, game: Game, books: tuple[str, ...], seed: int) -> _Market:
        rng = random.Random(f"{seed}-game-{game.index}")
        p_home, p_over = rng.uniform(0.38, 0.62), rng.uniform(0.46, 0.54)
        total = rng.choice((7.5, 8.0, 8.5, 9.0, 9.5))
        quotes = {
            b: _Book(
                rng.uniform(-0.01, 0.01), rng.uniform(0.035, 0.05), p_home, p_over, p_home >= 0.5
            )
            for b in books
        }
        return cls(rng, p_home, p_over, total, quotes)

    def step(self, volatility: float = 0.002, jumps: bool = True) -> None:
        """Random drift, and now and then a jump of three points of probability.

        The same random draws are taken whatever the arguments, so switching the jumps off or
        scaling the drift changes only those, not the rest of the market's path.
        """
        self.p_home = min(0.8, max(0.2, self.p_home + self.rng.gauss(0, volatility)))
        self.p_over = min(0.6, max(0.4, self.p_over + self.rng.gauss(0, volatility)))
        if self.rng.random() < 0.01:
            jump = self.rng.choice((-0.03, 0.03))
            if jumps:
                self.p_home += jump


@dataclass
class Simulator:
    seed: int = 7
    games: int = 6
    books: int = 5
    ticks: int = 120
    tick_seconds: int = 30
    start: datetime | None = None  # time of tick 0; default: so the last tick is about now
    scripted_jumps: tuple[ScriptedJump, ...] = ()
    drift: bool = True
    # Per-tick standard deviation of the true probabilities' random walk.
    volatility: float = 0.002
    # Unlabelled background steam: 1 % of ticks move a game's true probability by 3 points.
    market_jumps: bool = True
    _games: list[Game] = field(init=False, default_factory=list)
    # per (game, book, home spread, total): the payload as a bytes %-template (_PRICE_SLOTS)
    _templates: dict[tuple[int, str, float, float], bytes] = field(init=False, default_factory=dict)
    _stamps: dict[datetime, bytes] = field(init=False, default_factory=dict)  # one per tick
    _rendered: dict[tuple[int, str], tuple[tuple, list[bytes]]] = field(
        init=False, default_factory=dict
    )  # the last payload of each book, cut where the timestamp goes

    def __post_init__(self) -> None:
        if self.start is None:
            now = datetime.now(UTC).replace(microsecond=0)
            self.start = now - timedelta(seconds=self.ticks * self.tick_seconds)
        # 15 games a day, every team once a day: a full season is 2,430 games over 162 days.
        first_pitch = self.start + timedelta(seconds=self.ticks * self.tick_seconds, hours=2)
        run = f"sim{self.seed}-{self.start:%Y%m%dT%H%M%S}"
        teams: list[str] = []
        for g in range(self.games):
            day, slot = divmod(g, 15)
            if slot == 0:
                rng = random.Random(f"{self.seed}-schedule" + (f"-{day}" if day else ""))
                teams = list(CODES)
                rng.shuffle(teams)
            home, away = teams[2 * slot], teams[2 * slot + 1]
            commence = first_pitch + timedelta(days=day)
            self._games.append(Game(g, home, away, commence, f"{run}-g{g}"))

    @property
    def schedule(self) -> list[Game]:
        return list(self._games)

    @property
    def book_names(self) -> tuple[str, ...]:
        return BOOKS[: self.books]

    def _walk(self) -> Iterator[tuple[int, datetime, Game, _Market]]:
        """The market, tick by tick and game by game: (tick, time, game, market) once every book
        of the game has moved for the tick. The one place the random draws are taken, in one
        order, so every output (quotes, envelopes, encoded records) is the same run."""
        assert self.start is not None
        jumps: dict[tuple[int, str, int], tuple[int, int]] = {}
        for j in self.scripted_jumps:
            home, away = jumps.get((j.game, j.book, j.tick), (0, 0))
            jumps[(j.game, j.book, j.tick)] = (home + j.cents, away - j.cents * j.both_sides)
        names, drift = self.book_names, self.drift
        markets = [_Market.open(game, names, self.seed) for game in self._games]
        for tick in range(self.ticks):
            at = self.start + timedelta(seconds=tick * self.tick_seconds)
            for game, market in zip(self._games, markets, strict=True):
                if drift:
                    market.step(self.volatility, self.market_jumps)
                books, rand = market.books, market.rng.random
                for b in names:
                    book = books[b]
                    if tick == 0 or not drift or rand() < 0.35:
                        book.p, book.o = market.p_home + book.bias, market.p_over
                        book.dirty = True
                    if jumps:
                        home, away = jumps.get((game.index, b, tick), (0, 0))
                        if home or away:
                            book.shift += home
                            book.away_shift += away
                            book.dirty = True
                yield tick, at, game, market

    def quotes(self) -> Iterator[Quote]:
        """Every book's snapshot for every game at every tick, in time order."""
        names = self.book_names
        for tick, at, game, market in self._walk():
            for b in names:
                hml, aml, hs, hsp, asp, op, up = market.books[b].prices()
                yield Quote(  # positional: this runs once per snapshot
                    game.index, b, tick, at, hml, aml, hs, hsp, asp, market.total, op, up
                )  # fmt: skip

    def _template(self, game: Game, book: str) -> str:
        """The event's JSON with every moving part a format field: rendered once per book."""
        home, away = NAME_OF[game.home], NAME_OF[game.away]
        doc = {
            "id": game.event_id,
            "sport_key": "baseball_mlb",
            "sport_title": "MLB",
            "commence_time": game.commence.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "home_team": home,
            "away_team": away,
            "bookmakers": [
                {
                    "key": book,
                    "title": book.title(),
                    "last_update": "{ts}",
                    "markets": [
                        {"key": "h2h", "last_update": "{ts}", "outcomes": [
                            {"name": home, "price": "{hml}"},
                            {"name": away, "price": "{aml}"},
                        ]},
                        {"key": "spreads", "last_update": "{ts}", "outcomes": [
                            {"name": home, "price": "{hsp}", "point": "{hs}"},
                            {"name": away, "price": "{asp}", "point": "{as_}"},
                        ]},
                        {"key": "totals", "last_update": "{ts}", "outcomes": [
                            {"name": "Over", "price": "{op}", "point": "{tot}"},
                            {"name": "Under", "price": "{up}", "point": "{tot}"},
                        ]},
                    ],
                }
            ],
        }  # fmt: skip
        text = json.dumps(doc, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
        for name in ("hml", "aml", "hsp", "hs", "asp", "as_", "op", "tot", "up"):
            text = text.replace(f'"{{{{{name}}}}}"', f"{{{name}}}")
        return text.replace("{{ts}}", "{ts}")

    def _pattern(self, g: int, book: str, home_spread: float, total: float) -> bytes:
        """The payload as a bytes %-template: the moving prices are ``%d`` (in ``_PRICE_SLOTS``
        order), the timestamps NUL. Rendering is then one C-level ``%`` per price change."""
        key = (g, book, home_spread, total)
        pattern = self._templates.get(key)
        if pattern is None:
            text = self._template(self._games[g], book).replace("%", "%%")
            if sorted(_PRICE_SLOTS, key=lambda n: text.index(f"{{{n}}}")) != list(_PRICE_SLOTS):
                raise AssertionError("_template's price fields are not in _PRICE_SLOTS order")
            pattern = self._templates[key] = text.format(
                ts="\x00", hs=home_spread, as_=-home_spread, tot=total,
                **dict.fromkeys(_PRICE_SLOTS, "%d"),
            ).encode()  # fmt: skip
        return pattern

    def _render(self, g: int, book: str, prices: Prices, total: float) -> bytes:
        """One book's payload at these prices, a NUL where each timestamp goes."""
        hml, aml, hs, hsp, asp, op, up = prices
        return self._pattern(g, book, hs, total) % (hml, aml, hsp, asp, op, up)

    def _stamp(self, at: datetime) -> bytes:
        ts = self._stamps.get(at)
        if ts is None:
            ts = self._stamps[at] = at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
            if len(ts) != TS_LEN:
                raise ValueError(f"simulated times must be in the years 1000-9999, not {at}")
        return ts

    def payload(self, q: Quote) -> bytes:
        """The quote as The Odds API v4 would send it for one event and one bookmaker."""
        key = (q.game, q.book)
        prices = (q.home_ml, q.away_ml, q.home_spread, q.home_spread_price,
                  q.away_spread_price, q.over_price, q.under_price)  # fmt: skip
        cached = self._rendered.get(key)
        if cached is None or cached[0] != (prices, q.total):
            parts = self._render(q.game, q.book, prices, q.total).split(b"\x00")
            cached = self._rendered[key] = ((prices, q.total), parts)
        return self._stamp(q.at).join(cached[1])

    def event_id(self, q: Quote) -> str:
        return f"{self._games[q.game].event_id}-{q.book}-t{q.tick}"

    @staticmethod
    def key_of(event_id: str) -> str:
        """The Kafka key of a snapshot: its game, so one game's snapshots stay in order."""
        return event_id.rsplit("-", 2)[0]

    def envelopes(self) -> Iterator[tuple[str, bytes, datetime]]:
        """(event id, payload, fetched_at) for every quote, in time order."""
        for q in self.quotes():
            yield self.event_id(q), self.payload(q), q.at + timedelta(seconds=1)

    def records(self, layout: EnvelopeLayout) -> Iterator[tuple[bytes, bytes, int]]:
        """(Kafka key, encoded RawEnvelope, Kafka timestamp ms) of every snapshot, in time order.

        Byte for byte what publishing :meth:`envelopes` through ``layout`` gives, keyed by
        :meth:`key_of` (the game), timestamped with the envelope's fetched_at (the simulated
        poll of the tick, one second after it), but built for bulk publishing: no Quote, no
        dict, no str per record. Per tick the event-id head, the timestamps and the envelope's
        middle are made once; per book the payload is rendered only when its prices change; a
        record is then one join.
        """
        names, header, tail = self.book_names, layout.header, layout.tail
        second = timedelta(seconds=1)
        prefixes = [[f"{g.event_id}-{b}-t".encode() for b in names] for g in self._games]
        keys = [[self.key_of(f"{g.event_id}-{b}-t0").encode() for b in names] for g in self._games]
        heads: list[list[bytes]] = []
        digits, last_tick = 0, -1
        ts = mid = b""
        fetched_ms = 0
        for tick, at, game, market in self._walk():
            if tick != last_tick:
                last_tick, tick_id = tick, str(tick).encode()
                if len(tick_id) != digits:  # the event id's length varint changes with it
                    digits = len(tick_id)
                    heads = [[header + varint(len(p) + digits) + p for p in r] for r in prefixes]
                ts = self._stamp(at)
                mid = tick_id + layout.middle(at + second)
                fetched_ms = int((at + second).timestamp() * 1000)
            g, total = game.index, market.total
            books = market.books.values()
            for b, key, head, book in zip(names, keys[g], heads[g], books, strict=True):
                if book.dirty:
                    book.prices()
                if book.rendered_memo is not book.memo:
                    text = self._render(g, b, book.memo, total)
                    parts = text.split(b"\x00")
                    size = len(text) + (TS_LEN - 1) * (len(parts) - 1)  # NULs become stamps
                    parts[0] = varint(size) + parts[0]
                    parts[-1] += tail
                    book.rendered, book.rendered_memo = parts, book.memo
                yield key, head + mid + ts.join(book.rendered), fetched_ms
