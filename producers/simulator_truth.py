"""The market simulator with injected, labelled events, so feature quality can be scored.

Wraps :class:`producers.simulator.Simulator` (unchanged) through its ``scripted_jumps``, and adds
betting splits published in SportsBettingDime's shape (``games[].bettingSplits.moneyline``, read by
streams/staging/parsers/sbd.py). Injected, per game (each event on its own game):

- steam: 3+ books move the home moneyline the same way by ``steam_cents`` (≥ 10) within
  ``2 * steam_gap_ticks`` ticks (4 ticks of 30 s = 2 minutes, inside the 5-minute window);
- reverse line movement: public tickets ≥ 75 % on home from the start while every book moves
  the home price ``rlm_cents`` longer (toward away) at one tick;
- sharp money: away has 30 % of tickets but 55 % of the money (gap 25 points) on ≥ 500 bets.

Other games get balanced splits (tickets 40-60 %, money within 5 points of tickets). The labels
(JSON) name game id, kind, side, books and the event's time span. Same seed, same start → same
payloads and labels, byte for byte (``start`` defaults to a fixed instant for that reason).
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

from producers.simulator import ScriptedJump, Simulator
from streams.domain.games import game_id

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
    rlm_cents: int = 15
    split_every: int = 10  # ticks between two splits payloads
    labels: list[dict[str, Any]] = field(init=False, default_factory=list)
    sim: Simulator = field(init=False)

    def __post_init__(self) -> None:
        if self.books < 3:
            raise ValueError("steam moves need at least 3 books")
        if self.steam + self.rlm + self.sharp > self.games:
            raise ValueError("one injected event per game: raise games")
        if self.ticks < 4 * self.steam_gap_ticks + 10:
            raise ValueError("too few ticks to place the injected events")
        rng = random.Random(f"{self.seed}-truth")
        base = Simulator(
            self.seed, self.games, self.books, self.ticks, self.tick_seconds, self.start
        )
        order = list(range(self.games))
        rng.shuffle(order)
        kinds = ["steam"] * self.steam + ["rlm"] * self.rlm + ["sharp"] * self.sharp
        self._kind = dict(zip(order, kinds, strict=False))
        jumps: list[ScriptedJump] = []
        names = base.book_names
        for g, kind in sorted(self._kind.items()):
            game = base.schedule[g]
            gid = game_id(game.commence, game.away, game.home, 1)
            t = rng.randrange(self.ticks // 4, self.ticks - 2 * self.steam_gap_ticks - 1)
            if kind == "steam":
                direction = rng.choice((-1, 1))
                movers = sorted(rng.sample(names, max(3, len(names) // 2)), key=names.index)
                for i, b in enumerate(movers):
                    tick = t + min(i, 2) * self.steam_gap_ticks
                    jumps.append(ScriptedJump(g, b, tick, direction * self.steam_cents))
                last = t + 2 * self.steam_gap_ticks
                self.labels.append(
                    self._label("steam", gid, t, last, side="home", books=movers,
                                direction="toward_home" if direction < 0 else "toward_away",
                                cents=self.steam_cents)
                )  # fmt: skip
            elif kind == "rlm":
                jumps.extend(ScriptedJump(g, b, t, self.rlm_cents) for b in names)
                self.labels.append(
                    self._label("rlm", gid, t, t, side="home", books=list(names),
                                direction="toward_away", cents=self.rlm_cents, tickets_pct=78.0)
                )  # fmt: skip
            else:
                self.labels.append(
                    self._label("sharp", gid, 0, self.ticks - 1, side="away",
                                tickets_pct=30.0, money_pct=55.0)
                )  # fmt: skip
        self.sim = Simulator(
            self.seed, self.games, self.books, self.ticks, self.tick_seconds, self.start,
            scripted_jumps=tuple(jumps),
        )  # fmt: skip

    def _label(self, kind: str, gid: str, t0: int, t1: int, **extra: Any) -> dict[str, Any]:
        at = lambda t: (self.start + timedelta(seconds=t * self.tick_seconds)).isoformat()  # noqa: E731
        return {"kind": kind, "game_id": gid, "market": "moneyline", "start": at(t0),
                "end": at(t1), **extra}  # fmt: skip

    def _split(self, g: int, tick: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}-split-{g}-{tick}")
        kind = self._kind.get(g)
        bets = rng.randrange(500, 3000)
        if kind == "rlm":
            home_t, home_m = 78.0, 70.0
        elif kind == "sharp":
            home_t, home_m = 70.0, 45.0
        else:
            home_t = round(rng.uniform(40, 60), 1)
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
