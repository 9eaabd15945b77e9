"""Alert on steam moves: a downstream subscriber of ``curated.steam_moves``.

    .venv/bin/python examples/steam_alert.py                    # alerts from now on
    .venv/bin/python examples/steam_alert.py --from-beginning   # replay what the topic keeps
    .venv/bin/python examples/steam_alert.py --min-books 4 --min-confidence 0.7

The group ``steam-alerts`` remembers what was alerted, so a restart does not alert twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from core.settings import get_settings
from oddsflow.ops.subscribe import subscribe
from schemas.models import SteamMove


def alert_line(steam: SteamMove) -> str:
    """What an operator (or a chat webhook) gets for one steam move."""
    return (
        f"STEAM {steam.game_id} {steam.market.value} -> {steam.direction.value}:"
        f" {len(steam.books)} books ({', '.join(steam.books)}) moved"
        f" {steam.magnitude:g} {steam.unit.value} within {steam.window_minutes} min,"
        f" first {steam.first_mover} at {steam.first_move_at:%H:%M:%S}Z,"
        f" confidence {steam.confidence:.0%}"
    )


async def main(min_books: int, min_confidence: float, from_beginning: bool) -> None:
    async for steam in subscribe(
        "curated.steam_moves",
        group="steam-alerts",
        settings=get_settings(),
        from_beginning=from_beginning,
    ):
        if len(steam.books) >= min_books and steam.confidence >= min_confidence:
            print(alert_line(steam), flush=True)  # or post it to a webhook


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-books", type=int, default=3)
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--from-beginning", action="store_true")
    a = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(a.min_books, a.min_confidence, a.from_beginning))
