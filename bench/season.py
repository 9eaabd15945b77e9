"""Memory of the feature state over a simulated season: is it bounded, and at what size?

Why: the worker keeps every live game's state in memory twice (the engine, and the table that
mirrors its changelog), so the state must be dropped once a game is over or a season would grow
without end. This runs one partition the way the worker does (``PartitionFeatures``: event-time
clock, idle flush, expiry 12 h after first pitch; the table updated from ``take_changes`` every
``BATCH`` lines) over a season of synthetic staged lines streamed in event-time order, and
reports the process's peak RSS, the resident size along the way, and the largest number of live
games. One partition holding every game is the worst case for one worker process.

Season: ``games`` games (MLB: 2,430), 13 a day from 17:00 UTC, 30 minutes apart; each with 10
books x 3 markets repriced at random over the 8 hours before first pitch (both sides of a market
per reprice, ~1,400 lines a game) and a final score 3.5 hours after first pitch.
Run: ``python -m bench.season [games]`` (prints JSON).
"""

from __future__ import annotations

import heapq
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.engine_rate import _decimal
from core.settings import FeatureSettings
from streams.features.partitioned import GAME, LINE, PartitionFeatures

SEASON_GAMES = 2430
GAMES_PER_DAY = 13
BOOKS = 10
TICK = timedelta(minutes=2)
PREGAME = timedelta(hours=8)
REPRICE_P = 0.1  # chance that a (book, market) reprices at a tick
BATCH = 4000  # lines between table writes, as the worker's batches
SIDES = {"moneyline": ("home", "away"), "spread": ("home", "away"), "total": ("over", "under")}


def _first_pitch(g: int) -> datetime:
    day, slot = divmod(g, GAMES_PER_DAY)
    return datetime(2026, 3, 26, 17, tzinfo=UTC) + timedelta(days=day, minutes=30 * slot)


def _game(g: int, seed: int) -> Iterator[tuple[datetime, str, dict[str, Any]]]:
    """One game's staged records in event-time order."""
    rng = random.Random(seed * 100_003 + g)
    first_pitch = _first_pitch(g)
    gid = f"S{g:04d}"
    base = {"game_id": gid, "commence_time": first_pitch, "home_team": "BOS", "away_team": "NYY"}
    prices = {(b, m): [-110, {"moneyline": 0.0, "spread": -1.5, "total": 8.5}[m]]
              for b in range(BOOKS) for m in SIDES}  # fmt: skip
    t = first_pitch - PREGAME
    n = 0
    while t < first_pitch:
        for (b, market), st in prices.items():
            if rng.random() >= REPRICE_P:
                continue
            st[0] = max(-250, min(250, st[0] + rng.choice((-5, 5))))
            if -100 < st[0] < 100:
                st[0] = -100 if st[0] < 0 else 100
            if market != "moneyline" and rng.random() < 0.05:
                st[1] += rng.choice((-0.5, 0.5))
            a = int(st[0])
            other = -a if abs(a) > 100 else a
            ia, ib = 1 / _decimal(a), 1 / _decimal(other)
            for side, price, imp in zip(SIDES[market], (a, other), (ia, ib), strict=True):
                n += 1
                line = None
                if market == "spread":
                    line = st[1] if side == "home" else -st[1]
                elif market == "total":
                    line = st[1]
                yield t, LINE, {
                    **base, "book": f"book{b}", "market": market, "side": side, "line": line,
                    "price_american": price, "price_decimal": _decimal(price), "implied_prob": imp,
                    "novig_prob": imp / (ia + ib), "event_time": t, "ingested_at": t,
                    "source": "season", "source_event_id": f"{gid}-{n}",
                }  # fmt: skip
        t += TICK
    end = first_pitch + timedelta(hours=3, minutes=30)
    yield end, GAME, {
        **base, "status": "final", "home_score": rng.randrange(10),
        "away_score": rng.randrange(10), "event_time": end, "ingested_at": end,
        "source": "season", "source_event_id": f"{gid}-final",
    }  # fmt: skip


def season(games: int = SEASON_GAMES, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, record) of every game, merged in event-time order.

    Games are admitted when their pregame window opens, so only the games in play are held
    (never the whole season)."""
    heap: list[tuple[datetime, int, int, str, dict[str, Any], Iterator[Any]]] = []
    seq = 0

    def push(g: int, gen: Iterator[Any]) -> None:
        nonlocal seq
        item = next(gen, None)
        if item is not None:
            seq += 1
            heapq.heappush(heap, (item[0], seq, g, item[1], item[2], gen))

    g = 0
    while heap or g < games:
        while g < games and (not heap or _first_pitch(g) - PREGAME <= heap[0][0]):
            push(g, _game(g, seed))
            g += 1
        _, _, game, kind, rec, gen = heapq.heappop(heap)
        yield kind, rec
        push(game, gen)


def _peak_rss_mb() -> float:
    """VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_season(
    games: int = SEASON_GAMES, settings: FeatureSettings | None = None
) -> dict[str, Any]:
    """Feed the season through one partition; memory and size figures (see the module doc)."""
    pf = PartitionFeatures(settings or FeatureSettings(), 0)
    table: dict[bytes, bytes] = {}
    lines = outputs = live_max = table_max = 0
    rss: dict[str, float] = {}
    marks = {max(1, games * q // 100): f"{q}%" for q in (10, 25, 50, 75, 100)}
    began = time.perf_counter()
    final_seen = 0
    batch: list[tuple[str, dict[str, Any]]] = []
    for i, (kind, rec) in enumerate(season(games), 1):
        batch.append((kind, rec))
        if kind == LINE:
            lines += 1
        else:
            final_seen += 1
            if final_seen in marks:
                rss[marks[final_seen]] = round(_rss_mb(), 1)
        if i % BATCH == 0:  # a batch as the worker takes one (cut between instants or not)
            outputs += len(pf.process(batch))
            pf.drain_late()
            batch = []
            for key, value in pf.take_changes():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
            live_max = max(live_max, len(pf.engine.game_ids()))
            table_max = max(table_max, sum(map(len, table.values())))
    outputs += len(pf.process(batch)) + len(pf.flush_all())
    elapsed = time.perf_counter() - began
    return {
        "games": games,
        "lines": lines,
        "outputs": outputs,
        "seconds": round(elapsed, 1),
        "lines_per_s": round(lines / elapsed),
        "live_games_max": live_max,
        "live_games_end": len(pf.engine.game_ids()),
        "table_mb_max": round(table_max / 2**20, 1),
        "rss_mb_after_finals": rss,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run_season(int(sys.argv[1]) if len(sys.argv) > 1 else SEASON_GAMES)))
