"""Live, a steam move reaches subscribers at once, not when the lateness watermark passes it.

The simulator publishes at the pace of its event time (event time = wall time, a tick a second)
20 games x 5 books: a busy live stream. At one tick three books move one game's moneyline 20
cents together. Curated results no longer wait for the game's newest event time minus the
10-minute lateness (DESIGN.md, "Time"): the steam record is on ``curated.steam_moves`` within the
loop turns of the staging and features workers. The bound is generous (10 s; the benchmark's
live stage measures the real figures).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import topic_name
from producers.collect import publish_live
from producers.simulator import ScriptedJump, Simulator
from schemas.codec import default_codec
from streams.features.worker import features_group
from streams.staging.worker import staging_group
from tests.helpers import groups_assigned, wait_for, workers

JUMP_TICK = 6


async def test_a_steam_move_in_a_busy_live_stream_reaches_subscribers_at_once(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    steam_topic = topic_name(s, "curated.steam_moves")
    decode = default_codec().decode
    arrived: dict[str, tuple[float, dict]] = {}
    stop = threading.Event()

    def subscribe() -> None:
        """A downstream subscriber: reads the topic from its start, notes when each arrives."""
        c = Consumer(consumer_config(s, f"{s.kafka.topic_prefix}live-subscriber"))
        parts = c.list_topics(steam_topic, timeout=10).topics[steam_topic].partitions
        c.assign([TopicPartition(steam_topic, p, 0) for p in parts])
        try:
            while not stop.is_set():
                for msg in c.consume(100, timeout=0.05):
                    if msg.error() is None:
                        rec = decode(msg.value())
                        arrived.setdefault(rec["move_id"], (time.monotonic(), rec))
        finally:
            c.close()

    with workers(s, ("staging", "features"), tmp_path / "logs") as procs:
        await groups_assigned(s, [staging_group(s), features_group(s)])
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        probe = Simulator(seed=3, games=1, books=5)
        movers = probe.book_names[:3]
        sim = Simulator(
            seed=3, games=20, books=5, ticks=JUMP_TICK + 4, tick_seconds=1, start=start,
            volatility=0.0003, market_jumps=False,
            scripted_jumps=tuple(
                ScriptedJump(game=0, book=b, tick=JUMP_TICK, cents=-20, both_sides=True)
                for b in movers
            ),
        )  # fmt: skip
        acked: dict[int, float] = {}
        reader = threading.Thread(target=subscribe, daemon=True)
        reader.start()
        publisher = threading.Thread(
            target=publish_live, args=(s, sim),
            kwargs={"on_tick": lambda tick, at: acked.__setitem__(tick, at)}, daemon=True,
        )  # fmt: skip
        publisher.start()
        game = sim.schedule[0]

        async def steam_of_game() -> list[tuple[float, dict]]:
            assert all(p.poll() is None for p in procs.values()), "a worker died"
            return [v for v in arrived.values() if game.home in v[1]["game_id"]]

        try:
            [(seen_at, move)] = await wait_for(
                steam_of_game, lambda v: len(v) == 1, timeout=60, interval=0.05,
                what="the steam move on curated.steam_moves",
            )  # fmt: skip
        finally:
            stop.set()
            publisher.join(timeout=30)
            reader.join(timeout=10)
        await asyncio.sleep(0)
    assert move["direction"] == "home" and move["market"] == "moneyline"
    assert sorted(move["books"]) == sorted(movers)
    assert move["detected_at"] == start + timedelta(seconds=JUMP_TICK)
    latency = seen_at - acked[JUMP_TICK]
    # the old engine held every result for the game's 10-minute lateness (or a 30 s idle flush)
    assert latency < 10.0, f"steam reached the subscriber {latency:.1f} s after its raw record"
    assert not [m for m in arrived.values() if game.home not in m[1]["game_id"]]  # no noise
