"""The market simulator with injected, labelled events, so feature quality can be scored.

Wraps :class:`producers.simulator.Simulator` through its ``scripted_jumps`` (both sides of the
moneyline move, so a book keeps its hold), and adds betting splits published in
SportsBettingDime's shape (``games[].bettingSplits.moneyline``, read by
core/formats/sbd.py). Injected, per game (each event on its own game):

- steam: 3+ books move the home moneyline the same way by ``steam_cents`` (≥ 10) within
  ``2 * steam_gap_ticks`` ticks (4 ticks of 30 s = 2 minutes, inside the 5-minute window);
- reverse line movement: the public holds ``rlm_tickets_pct`` (78 %) of the tickets on one side
  from the start while every book grinds the home price toward the other side by
  ``rlm_step_cents`` every ``rlm_step_ticks`` ticks, ``rlm_steps`` times (4 cents every 5 minutes,
  20 cents in all): a move well past the RLM minimum (10 cents) that is never steam (at most one
  step, 4 cents, inside any 5-minute window);
- sharp money: one side has 45 % of the tickets but 70 % of the money (gap 25 points, premium) on
  ≥ 500 bets.

Only the labelled events may meet a definition, so the background is kept below every threshold
by construction rather than labelled after the fact:

- the market's unlabelled jumps are off (``market_jumps=False``: they are real steam moves) and
  the drift is quiet (``volatility`` 0.00025 a tick: over 180 simulated games no book's home
  moneyline moved more than 3 cents in 5 minutes or 6 cents in an hour, against thresholds of
  10; ``tests/unit/test_collect_truth.py`` checks the payloads);
- games without an RLM label have balanced tickets (45-55 %: no side above the lowest RLM tier,
  55 %), so a steam move there is not also an RLM; games without a sharp label have money within
  5 points of tickets (the lowest sharp tier is 10).

The labels (JSON) name game id, kind, side, books and the event's time span. Same seed, same
start → same payloads and labels, byte for byte (``start`` defaults to a fixed instant).
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.domain.games import game_id
from producers.simulator import ScriptedJump, Simulator

DEFAULT_START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)
Envelope = tuple[str, str, bytes, datetime]  # (source, event id, payload, fetched_at)


@dataclass
class TruthSimulator:
    seed: int = 7
    games: int = 6
    books: int = 5
    ticks: int = 120
    tick_seconds: int = 30
    start: datetime = DEFAULT_START
    steam: int = 1
    rlm: int = 1
    sharp: int = 1
    steam_cents: int = 15
    steam_gap_ticks: int = 2
    rlm_step_cents: int = 4
    rlm_steps: int = 5
    rlm_step_ticks: int = 10
    rlm_tickets_pct: float = 78.0
    split_every: int = 10  # ticks between two splits payloads
    volatility: float = 0.00025  # the background drift: see the module's docstring
    labels: list[dict[str, Any]] = field(init=False, default_factory=list)
    sim: Simulator = field(init=False)

    def __post_init__(self) -> None:
        if self.books < 3:
            raise ValueError("steam moves need at least 3 books")
        if self.steam + self.rlm + self.sharp > self.games:
            raise ValueError("one injected event per game: raise games")
        spans = {
            "steam": 2 * self.steam_gap_ticks,
            "rlm": (self.rlm_steps - 1) * self.rlm_step_ticks,
        }
        if self.ticks // 4 >= self.ticks - max(spans.values()) - 1:
            raise ValueError("too few ticks to place the injected events")
        rng = random.Random(f"{self.seed}-truth")
        base = Simulator(
            self.seed, self.games, self.books, self.ticks, self.tick_seconds, self.start
        )
        order = list(range(self.games))
        rng.shuffle(order)
        kinds = ["steam"] * self.steam + ["rlm"] * self.rlm + ["sharp"] * self.sharp
        self._kind = dict(zip(order, kinds, strict=False))
        self._side: dict[int, str] = {}  # rlm: the public's side; sharp: the sharp side
        jumps: list[ScriptedJump] = []
        names = base.book_names
        for g, kind in sorted(self._kind.items()):
            game = base.schedule[g]
            gid = game_id(game.commence, game.away, game.home, 1)
            t = rng.randrange(self.ticks // 4, self.ticks - spans.get(kind, 0) - 1)
            if kind == "steam":
                direction = rng.choice((-1, 1))
                movers = sorted(rng.sample(names, max(3, len(names) // 2)), key=names.index)
                for i, b in enumerate(movers):
                    tick = t + min(i, 2) * self.steam_gap_ticks
                    jumps.append(ScriptedJump(g, b, tick, direction * self.steam_cents, True))
                last = t + 2 * self.steam_gap_ticks
                self.labels.append(
                    self._label("steam", gid, t, last, side="home", books=movers,
                                direction="toward_home" if direction < 0 else "toward_away",
                                cents=self.steam_cents)
                )  # fmt: skip
            elif kind == "rlm":
                # The home price lengthens (+) when money goes to away, against a home public.
                direction = rng.choice((-1, 1))
                toward = "home" if direction < 0 else "away"
                self._side[g] = "away" if toward == "home" else "home"
                for k in range(self.rlm_steps):
                    tick = t + k * self.rlm_step_ticks
                    jumps.extend(
                        ScriptedJump(g, b, tick, direction * self.rlm_step_cents, True)
                        for b in names
                    )
                self.labels.append(
                    self._label("rlm", gid, t, spans["rlm"] + t, side="home", books=list(names),
                                direction=f"toward_{toward}",
                                cents=self.rlm_steps * self.rlm_step_cents,
                                public_side=self._side[g], tickets_pct=self.rlm_tickets_pct)
                )  # fmt: skip
            else:
                self._side[g] = rng.choice(("home", "away"))
                self.labels.append(
                    self._label("sharp", gid, 0, self.ticks - 1, side=self._side[g],
                                tickets_pct=45.0, money_pct=70.0)
                )  # fmt: skip
        self.sim = Simulator(
            self.seed, self.games, self.books, self.ticks, self.tick_seconds, self.start,
            scripted_jumps=tuple(jumps), volatility=self.volatility, market_jumps=False,
        )  # fmt: skip

    def _label(self, kind: str, gid: str, t0: int, t1: int, **extra: Any) -> dict[str, Any]:
        at = lambda t: (self.start + timedelta(seconds=t * self.tick_seconds)).isoformat()  # noqa: E731
        return {"kind": kind, "game_id": gid, "market": "moneyline", "start": at(t0),
                "end": at(t1), **extra}  # fmt: skip

    def _split(self, g: int, tick: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}-split-{g}-{tick}")
        kind = self._kind.get(g)
        bets = rng.randrange(500, 3000)
        if kind == "rlm":  # the public on one side, the money not far behind
            public_t = self.rlm_tickets_pct
            public_m = public_t - 8.0
            home_t, home_m = (
                (public_t, public_m)
                if self._side[g] == "home"
                else (100 - public_t, 100 - public_m)
            )
        elif kind == "sharp":  # a minority of tickets, a majority of the money
            home_t, home_m = (45.0, 70.0) if self._side[g] == "home" else (55.0, 30.0)
        else:  # balanced: no side above 55 % of tickets, money within 5 points of tickets
            home_t = round(rng.uniform(45, 55), 1)
            home_m = round(min(99.0, max(1.0, home_t + rng.uniform(-5, 5))), 1)
        hb = round(bets * home_t / 100)
        side = lambda b, t, m: {"bets": b, "betsPercentage": t, "stakePercentage": m}  # noqa: E731
        return {
            "updated": (self.start + timedelta(seconds=tick * self.tick_seconds)).isoformat(),
            "bets": bets,
            "home": side(hb, home_t, home_m),
            "away": side(bets - hb, round(100 - home_t, 1), round(100 - home_m, 1)),
        }

    def split_envelopes(self) -> Iterator[Envelope]:
        """One SBD-shaped payload (every game's moneyline splits) every ``split_every`` ticks."""
        run = f"sim{self.seed}-{self.start:%Y%m%dT%H%M}"
        for tick in range(0, self.ticks, self.split_every):
            games = [
                {
                    "_id": game.event_id,
                    "date": game.commence.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "home": {"code": game.home},
                    "away": {"code": game.away},
                    "sportsbooks": [],
                    "bettingSplits": {"moneyline": self._split(game.index, tick)},
                }
                for game in self.sim.schedule
            ]
            payload = json.dumps({"games": games}, separators=(",", ":")).encode()
            at = self.start + timedelta(seconds=tick * self.tick_seconds + 1)
            yield "sbd", f"{run}-splits-t{tick}", payload, at

    def envelopes(self) -> Iterator[Envelope]:
        """Odds snapshots (source simulator) and splits (source sbd), merged in time order."""
        odds = (("simulator", e, p, at) for e, p, at in self.sim.envelopes())
        return heapq.merge(odds, self.split_envelopes(), key=lambda env: env[3])

    def write_labels(self, path: Path) -> None:
        doc = {"seed": self.seed, "start": self.start.isoformat(), "labels": self.labels}
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
