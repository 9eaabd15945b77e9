"""The example subscriber's alert text (examples/steam_alert.py, quoted in the README)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

from schemas.models import Market, MoveUnit, Side, SteamMove

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "steam_alert.py"


def test_alert_line_names_the_move() -> None:
    spec = importlib.util.spec_from_file_location("steam_alert", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    at = datetime(2026, 6, 1, 18, 4, tzinfo=UTC)
    steam = SteamMove(
        move_id="m",
        game_id="2026-06-01-PIT-STL",
        market=Market.MONEYLINE,
        direction=Side.HOME,
        detected_at=at,
        window_minutes=5,
        books=["pinnacle", "draftkings", "fanduel"],
        first_mover="pinnacle",
        first_move_at=datetime(2026, 6, 1, 18, 1, 30, tzinfo=UTC),
        magnitude=15.0,
        unit=MoveUnit.CENTS,
        confidence=0.6,
        books_quoting=5,
    )
    assert mod.alert_line(steam) == (
        "STEAM 2026-06-01-PIT-STL moneyline -> home: 3 books (pinnacle, draftkings, fanduel)"
        " moved 15 cents within 5 min, first pinnacle at 18:01:30Z, confidence 60%"
    )
