"""A downstream subscriber of ``curated.steam_moves`` receives exactly the injected steam moves.

The staging and features workers run on a simulator market with a scripted steam move (three
books 15 cents toward home within 4 minutes, then a later change that moves event time past the
10-minute allowed lateness). The expectation is the pure reference engine over the lines the
staging worker actually staged, and the injected move itself (its game, books and direction).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.staged_input import TopicReader
from core.domain.games import game_id as make_game_id
from core.settings import Settings
from core.topics import topic_name
from oddsflow.ops.lag import observe
from oddsflow.ops.subscribe import subscribe
from producers.collect import publish_simulation
from producers.simulator import ScriptedJump, Simulator
from schemas.models import Side, SteamMove
from streams.features.worker import IDLE_FLUSH_ENV
from tests.helpers import wait_for, workers
from tests.integration.test_workers_lifecycle import sigterm
from tests.support.features_reference import reference_features

START = datetime(2026, 4, 4, 17, 0, tzinfo=UTC)
MOVERS = ("pinnacle", "draftkings", "fanduel")
STEAM_TICKS = (34, 36, 38)
STAGING = ("staging.odds_lines", "staging.betting_splits", "staging.games")


async def take(settings: Settings, n: int | None, idle: float | None) -> list[SteamMove]:
    """Steam moves from the group ``alerts``: ``n`` of them, or until ``idle`` seconds pass."""
    got: list[SteamMove] = []
    async with aclosing(
        subscribe("curated.steam_moves", "alerts", settings=settings, from_beginning=True,
                  idle_timeout=idle)
    ) as moves:  # fmt: skip
        async for move in moves:
            assert isinstance(move, SteamMove)
            got.append(move)
            if n is not None and len(got) >= n:
                break
    return got


async def test_subscriber_receives_exactly_the_injected_steam_moves(
    pipeline_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = pipeline_settings
    sim = Simulator(
        seed=5, games=2, books=4, ticks=60, tick_seconds=30, start=START, drift=False,
        scripted_jumps=(
            *(ScriptedJump(0, b, t, -15) for b, t in zip(MOVERS, STEAM_TICKS, strict=True)),
            ScriptedJump(0, "betmgm", 59, 5),  # moves event time past the allowed lateness
        ),
    )  # fmt: skip
    game = sim.schedule[0]
    gid = make_game_id(game.commence, game.away, game.home, 1)
    monkeypatch.setenv(IDLE_FLUSH_ENV, "2")  # release the held-back tail once the input ends

    with workers(s, ("staging", "features"), tmp_path / "logs") as procs:
        assert publish_simulation(s, sim, progress=False).stats.acked == 2 * 4 * 60
        # drift off: each book's first snapshot (6 lines) plus one line per scripted jump
        reader = TopicReader(s, STAGING)
        try:

            async def staged() -> int:
                await asyncio.to_thread(reader.poll, 0.5)
                return reader.count("staging.odds_lines")

            assert await wait_for(staged, lambda n: n >= 2 * 4 * 6 + 4, timeout=120) == 52
            await staged()  # games and splits of the same payloads, if any still in flight
            lines = reader.records["staging.odds_lines"]
            splits = reader.records["staging.betting_splits"]
            games = reader.records["staging.games"]
        finally:
            reader.close()
        expected = sorted(
            (SteamMove.from_avro(rec) for topic, rec in reference_features(lines, splits, games)
             if topic == "curated.steam_moves"),
            key=lambda m: m.move_id,
        )  # fmt: skip
        assert expected, "the reference engine found no steam move"
        got = await asyncio.wait_for(take(s, len(expected), None), timeout=120)
        assert all(p.poll() is None for p in procs.values()), "a worker died"
        # nothing more arrives after them (the group committed what it received)
        assert await take(s, None, idle=4) == []
        # SIGTERM: the features worker exits within 10 s having committed all it consumed
        took = sigterm(procs["features"])
        assert took < 10 and procs["features"].returncode == 0, took
        # committed up to the end of every input partition (staging writes transactionally:
        # the commit markers after its records are not records, which the lag monitor knows)
        [group] = observe(s, [f"{s.kafka.topic_prefix}oddsflow-features"])
        inputs = {topic_name(s, t) for t in STAGING}
        assert {(p.topic, p.partition) for p in group.partitions if p.end} <= {
            (t, n) for t in inputs for n in range(s.kafka.partitions)
        }
        assert group.lag == 0 and all(p.committed for p in group.partitions if p.end), group

    assert sorted(got, key=lambda m: m.move_id) == expected
    # and what arrived is the injected move: that game, its books, toward home
    injected = [m for m in got if set(MOVERS) <= set(m.books)]
    assert len(injected) == 1, got
    move = injected[0]
    assert move.game_id == gid and move.direction == Side.HOME
    assert move.market.value == "moneyline" and move.first_mover == MOVERS[0]
