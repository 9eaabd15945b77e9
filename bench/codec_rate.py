"""Codec throughput on a realistic stream of staging OddsLine records.

Why a realistic stream: the codec caches what a real feed repeats (team codes, book keys, game
ids, first-pitch times, one fetch time per payload), so timing one record over and over would
flatter it and timing random strings would not measure the pipeline. The stream here is the
shape of the odds feed: snapshots of 15 games x 8 books x 6 sides, one fetch time per snapshot,
an event time per book per snapshot, moving prices. ``bench_codec(distinct=True)`` gives the
worst case (every timestamp new) for comparison.

Run: ``python -m bench.codec_rate`` (prints JSON).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from typing import Any

from schemas.codec import Codec, default_codec

ODDS_LINE = "oddsflow.staging.OddsLine"
TEAMS = (
    "ARI", "ATL", "BAL", "BOS", "CHC", "CWS", "CIN", "CLE", "COL", "DET", "HOU", "KC", "LAA", "LAD",
    "MIA", "MIL", "MIN", "NYM", "NYY", "ATH", "PHI", "PIT", "SD", "SF", "SEA", "STL", "TB", "TEX",
    "TOR", "WSH",
)  # fmt: skip
BOOKS = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars", "bet365", "circa", "betrivers")
SIDES = (("moneyline", "home"), ("moneyline", "away"), ("spread", "home"), ("spread", "away"),
         ("total", "over"), ("total", "under"))  # fmt: skip


def _decimal(a: int) -> float:
    return 1 + a / 100 if a >= 100 else 1 + 100 / -a


def sample_odds_lines(n: int, distinct: bool = False) -> list[dict[str, Any]]:
    """``n`` OddsLine records shaped like the odds feed (deterministic)."""
    start = dt.datetime(2024, 4, 3, 16, 0, tzinfo=dt.UTC)
    games = []
    for g in range(15):
        away, home = TEAMS[2 * g], TEAMS[2 * g + 1]
        first_pitch = start + dt.timedelta(hours=1 + g % 6)
        games.append((f"MLB-20240403-{away}@{home}-1", first_pitch, home, away))
    out: list[dict[str, Any]] = []
    snap = 0
    while len(out) < n:
        fetched = start + dt.timedelta(seconds=30 * snap)
        for gi, (game_id, first_pitch, home, away) in enumerate(games):
            for bi, book in enumerate(BOOKS):
                event_time = fetched - dt.timedelta(seconds=1 + bi)
                for si, (market, side) in enumerate(SIDES):
                    i = len(out)
                    if distinct:
                        event_time = fetched + dt.timedelta(microseconds=i)
                        fetched_i = fetched + dt.timedelta(microseconds=2 * i + 1)
                    else:
                        fetched_i = fetched
                    a = (-110 - (snap + gi + bi + si) % 40) if si % 2 == 0 else 100 + (snap % 30)
                    dec = _decimal(a)
                    out.append(
                        {
                            "game_id": game_id,
                            "commence_time": first_pitch,
                            "home_team": home,
                            "away_team": away,
                            "book": book,
                            "market": market,
                            "side": side,
                            "line": None if market == "moneyline" else (-1.5 if si == 2 else 8.5),
                            "price_american": a,
                            "price_decimal": dec,
                            "implied_prob": 1 / dec,
                            "novig_prob": 0.5 + (a % 7) / 100,
                            "event_time": event_time,
                            "ingested_at": fetched_i,
                            "source": "odds_api",
                            "source_event_id": f"odds_api-{snap}-{gi}",
                        }
                    )
                    if len(out) == n:
                        return out
        snap += 1
    return out


def bench_codec(n: int = 200_000, runs: int = 5, distinct: bool = False) -> dict[str, Any]:
    """Encode and decode records per second of the codec (median of ``runs`` runs, one core)."""
    codec: Codec = default_codec()
    records = sample_odds_lines(n, distinct=distinct)
    encode = codec.encoder(ODDS_LINE)
    decode = codec.decode
    enc_rates: list[float] = []
    dec_rates: list[float] = []
    frames: list[bytes] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        frames = [encode(r) for r in records]
        t1 = time.perf_counter()
        for f in frames:
            decode(f, ODDS_LINE)
        t2 = time.perf_counter()
        enc_rates.append(n / (t1 - t0))
        dec_rates.append(n / (t2 - t1))
    assert decode(frames[-1], ODDS_LINE) == records[-1]
    return {
        "schema": ODDS_LINE,
        "records": n,
        "runs": runs,
        "distinct_timestamps": distinct,
        "encode_per_s": round(statistics.median(enc_rates)),
        "decode_per_s": round(statistics.median(dec_rates)),
        "bytes_per_record": round(sum(len(f) for f in frames) / n, 1),
    }


if __name__ == "__main__":
    print(json.dumps(bench_codec(), indent=2))
    print(json.dumps(bench_codec(distinct=True), indent=2))
