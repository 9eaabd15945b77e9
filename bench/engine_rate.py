"""Throughput benchmark of the feature engine on synthetic staged lines (no Kafka).

The lines are generated before the clock starts: only the engine's live path (``LiveEngine``,
what the worker runs) is timed, the per-record work the streaming worker adds on top of Kafka.
Run: ``python -m bench.engine_rate [n_lines]``.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import FeatureSettings
from streams.features.engine import FeatureEngine

_MARKETS = (
    ("moneyline", ("home", "away")),
    ("spread", ("home", "away")),
    ("total", ("over", "under")),
)


def _decimal(a: int) -> float:
    return 1 + a / 100 if a >= 100 else 1 + 100 / abs(a)


def synthetic_lines(
    n_lines: int, games: int = 15, books: int = 8, seed: int = 7, arrival_jitter_s: float = 120
) -> list[dict[str, Any]]:
    """Realistic-ish staged lines: each tick one book reprices both sides of one market.

    Ticks are seconds apart per game, so the 60-minute window holds hundreds of changes; arrival
    is shuffled by up to ``arrival_jitter_s`` (inside the allowed lateness) to exercise the buffer.
    """
    rng = random.Random(seed)
    start = datetime(2025, 6, 13, 12, tzinfo=UTC)
    state: dict[tuple[int, str, int], list[float]] = {}
    out: list[tuple[float, dict[str, Any]]] = []
    clock = [0.0] * games
    book_names = [f"book{b}" for b in range(books)]
    for i in range(n_lines // 2):
        g = i % games
        clock[g] += rng.uniform(1, 8)
        market, sides = _MARKETS[rng.randrange(3)]
        b = rng.randrange(books)
        key = (g, market, b)
        price, pts = state.get(
            key, [-110.0, {"moneyline": 0.0, "spread": -1.5, "total": 8.5}[market]]
        )
        price += rng.choice((-5, 0, 5))
        if market != "moneyline" and rng.random() < 0.05:
            pts += rng.choice((-0.5, 0.5))
        price = max(-250.0, min(250.0, price))
        if -100 < price < 100:
            price = -100.0 if price < 0 else 100.0
        state[key] = [price, pts]
        when = start + timedelta(seconds=clock[g])
        a = int(price)
        other = -a if abs(a) > 100 else a
        ia, ib = 1 / _decimal(a), 1 / _decimal(other)
        for side, p, imp in ((sides[0], a, ia), (sides[1], other, ib)):
            line = None if market == "moneyline" else (pts if side in ("home", "over") else -pts)
            if market == "total":
                line = pts
            rec = {
                "game_id": f"G{g:03d}",
                "commence_time": start + timedelta(days=1),
                "home_team": "BOS",
                "away_team": "NYY",
                "book": book_names[b],
                "market": market,
                "side": side,
                "line": line,
                "price_american": p,
                "price_decimal": _decimal(p),
                "implied_prob": imp,
                "novig_prob": imp / (ia + ib),
                "event_time": when,
                "ingested_at": when,
                "source": "bench",
                "source_event_id": f"e{i}",
            }
            out.append((clock[g] + rng.uniform(0, arrival_jitter_s), rec))
    out.sort(key=lambda p: p[0])
    return [r for _, r in out]


def bench_engine(
    n_lines: int = 200_000,
    settings: FeatureSettings | None = None,
    batch: int = 2_000,
    arrival_jitter_s: float = 120.0,
) -> dict[str, Any]:
    """lines/s of the engine as the worker runs it (``LiveEngine``: results at once, batches of
    ``batch`` lines, corrections for the lines that arrive after later ones of another batch),
    peak state size, output and correction counts."""
    from streams.features.definitions import MINUTE_US
    from streams.features.live_engine import LiveEngine

    s = settings or FeatureSettings()
    lines = synthetic_lines(n_lines, arrival_jitter_s=arrival_jitter_s)
    engine = FeatureEngine(s)
    live = LiveEngine(engine, s.allowed_lateness_minutes * MINUTE_US)
    outputs = 0
    peak = 0
    every = max(1, len(lines) // batch // 25)
    began = time.perf_counter()
    for n, i in enumerate(range(0, len(lines), batch)):
        outputs += len(live.apply([("line", rec) for rec in lines[i : i + batch]]))
        live.take_changes()  # the worker writes them to its changelog each batch
        if n % every == 0:
            peak = max(peak, engine.state_size())
    elapsed = time.perf_counter() - began
    return {
        "lines": len(lines),
        "seconds": round(elapsed, 3),
        "lines_per_s": round(len(lines) / elapsed),
        "outputs": outputs,
        "peak_state_size": peak,
        "late": len(live.late),
        "replays": live.replays,
        "corrected": live.corrected,
        "retracted": live.retracted,
    }


if __name__ == "__main__":
    print(bench_engine(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
