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
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from streams.domain.teams import CODES, FULL_NAMES

BOOKS = (
    "pinnacle", "draftkings", "fanduel", "betmgm", "caesars", "bet365", "pointsbet",
    "betrivers", "wynnbet", "circa", "bovada", "mybookie", "betonline", "unibet", "barstool",
    "superbook", "betway", "williamhill", "espnbet", "fanatics",
)  # fmt: skip
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


@dataclass
class _Book:
    bias: float
    vig: float
    p: float
    o: float
    home_favourite: bool
    shift: int = 0
    away_shift: int = 0
    memo_key: tuple[float, float, int, int] | None = None
    memo: tuple[int, int, float, int, int, int, int] = (0, 0, 0.0, 0, 0, 0, 0)


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
    _templates: dict[tuple[int, str], str] = field(init=False, default_factory=dict)
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

    def quotes(self) -> Iterator[Quote]:
        """Every book's snapshot for every game at every tick, in time order."""
        assert self.start is not None
        jumps: dict[tuple[int, str, int], tuple[int, int]] = {}
        for j in self.scripted_jumps:
            home, away = jumps.get((j.game, j.book, j.tick), (0, 0))
            jumps[(j.game, j.book, j.tick)] = (home + j.cents, away - j.cents * j.both_sides)
        markets = [_Market.open(game, self.book_names, self.seed) for game in self._games]
        for tick in range(self.ticks):
            at = self.start + timedelta(seconds=tick * self.tick_seconds)
            for game, market in zip(self._games, markets, strict=True):
                if self.drift:
                    market.step(self.volatility, self.market_jumps)
                for b in self.book_names:
                    book = market.books[b]
                    if tick == 0 or not self.drift or market.rng.random() < 0.35:
                        book.p, book.o = market.p_home + book.bias, market.p_over
                    home, away = jumps.get((game.index, b, tick), (0, 0))
                    book.shift += home
                    book.away_shift += away
                    yield self._quote(game, b, tick, at, book, market.total)

    def _quote(
        self, game: Game, book: str, tick: int, at: datetime, s: _Book, total: float
    ) -> Quote:
        memo_key = (s.p, s.o, s.shift, s.away_shift)
        if s.memo_key != memo_key:  # most books keep their prices most ticks
            s.memo_key, s.memo = memo_key, self._prices(s)
        hml, aml, hs, hsp, asp, op, up = s.memo
        return Quote(  # positional: this runs once per snapshot
            game.index, book, tick, at, hml, aml, hs, hsp, asp, total, op, up
        )  # fmt: skip

    @staticmethod
    def _prices(s: _Book) -> tuple[int, int, float, int, int, int, int]:
        half_vig = s.vig / 2
        p = min(0.85, max(0.15, round(s.p, 3)))
        home_ml = shift_cents(prob_to_american(p + half_vig), s.shift)
        away_ml = prob_to_american(1 - p + half_vig)
        if s.away_shift:  # shift_cents(-100, 0) is +100: only shift when there is a shift
            away_ml = shift_cents(away_ml, s.away_shift)
        home_spread = -1.5 if s.home_favourite else 1.5  # the run line is set at the open
        cover = min(0.8, max(0.2, round((p - 0.18) if s.home_favourite else (p + 0.18), 2)))
        o = round(s.o, 2)
        return (
            home_ml, away_ml, home_spread,
            prob_to_american(cover + half_vig), prob_to_american(1 - cover + half_vig),
            prob_to_american(o + half_vig), prob_to_american(1 - o + half_vig),
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

    def payload(self, q: Quote) -> bytes:
        """The quote as The Odds API v4 would send it for one event and one bookmaker."""
        key = (q.game, q.book)
        prices = (q.home_ml, q.away_ml, q.home_spread, q.home_spread_price,
                  q.away_spread_price, q.over_price, q.under_price, q.total)  # fmt: skip
        cached = self._rendered.get(key)
        if cached is None or cached[0] != prices:
            template = self._templates.get(key)
            if template is None:
                template = self._templates[key] = self._template(self._games[q.game], q.book)
            text = template.format(
                ts="\x00",
                hml=q.home_ml, aml=q.away_ml, hsp=q.home_spread_price, asp=q.away_spread_price,
                hs=q.home_spread, as_=-q.home_spread, op=q.over_price, up=q.under_price,
                tot=q.total,
            )  # fmt: skip
            cached = self._rendered[key] = (prices, [p.encode() for p in text.split("\x00")])
        ts = self._stamps.get(q.at)
        if ts is None:
            ts = self._stamps[q.at] = q.at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        return ts.join(cached[1])

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
