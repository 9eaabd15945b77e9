"""subscribe(): exactly the steam moves published, typed; a group resumes where it left off."""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.settings import Settings
from core.topics import topic_name
from oddsflow.ops.subscribe import add_subscribe_arguments, run_subscribe, subscribe
from schemas.codec import default_codec
from schemas.models import Market, MoveUnit, Side, SteamMove

T0 = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


def steam(i: int) -> SteamMove:
    at = T0 + timedelta(minutes=i)
    return SteamMove(
        move_id=f"g{i}|moneyline|home|{at.isoformat()}",
        game_id=f"g{i}",
        market=Market.MONEYLINE,
        direction=Side.HOME if i % 2 else Side.AWAY,
        detected_at=at,
        window_minutes=5,
        books=["pinnacle", "draftkings", "fanduel"],
        first_mover="pinnacle",
        first_move_at=at - timedelta(minutes=2),
        magnitude=15.0 + i,
        unit=MoveUnit.CENTS,
        confidence=0.6,
        books_quoting=5,
    )


def publish(settings: Settings, moves: list[SteamMove]) -> None:
    encode = default_codec().encoder(SteamMove.schema_name())
    producer = Producer(producer_config(settings))
    topic = topic_name(settings, "curated.steam_moves")
    for m in moves:
        producer.produce(topic, key=m.game_id.encode(), value=encode(m.to_avro()))
    assert producer.flush(10) == 0


async def collect(settings: Settings, group: str | None, n: int) -> list[SteamMove]:
    got: list[SteamMove] = []
    async with aclosing(
        subscribe(
            "curated.steam_moves",
            group,
            settings=settings,
            from_beginning=True,
            idle_timeout=3,
        )
    ) as moves:
        async for move in moves:
            assert isinstance(move, SteamMove)
            got.append(move)
            if len(got) == n:
                break
    return got


async def test_subscriber_receives_exactly_the_published_steam_moves(
    pipeline_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    s = pipeline_settings
    first = [steam(i) for i in range(6)]
    publish(s, first)
    got = await collect(s, "alerts", 6)
    assert sorted(got, key=lambda m: m.move_id) == first  # equal models: every field typed back

    # the group committed them: a new run sees only what came after
    later = [steam(i) for i in range(6, 9)]
    publish(s, later)
    again = await collect(s, "alerts", 4)  # asks for one more than exists: ends idle
    assert sorted(again, key=lambda m: m.move_id) == later

    # the command line prints the same records as JSON lines
    parser = argparse.ArgumentParser()
    add_subscribe_arguments(parser)
    args = parser.parse_args(
        ["curated.steam_moves", "--from-beginning", "--json", "--max", "9", "--idle-exit", "3"]
    )
    assert await asyncio.to_thread(run_subscribe, s, args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sorted(x["value"]["move_id"] for x in lines) == sorted(m.move_id for m in first + later)
    assert {x["topic"] for x in lines} == {topic_name(s, "curated.steam_moves")}
    assert lines[0]["value"]["market"] == "moneyline"


def test_unknown_topic_is_refused_in_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from oddsflow.cli import main

    assert main(["subscribe", "curated.nope"]) == 2  # a usage error, before any wait for Kafka
    assert capsys.readouterr().err.strip() == (
        "oddsflow subscribe: 'curated.nope' is not in the topic catalog"
    )
