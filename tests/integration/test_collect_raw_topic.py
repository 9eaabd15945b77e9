"""Collectors into the real broker: payloads arrive byte-identical, once, in event-time order.

Every record is consumed back with confluent-kafka and decoded with the default codec.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from core.formats import parse
from core.kafka_config import client_config, raw_record_max_bytes
from core.settings import Settings
from core.topics import DAY_MS, raw_topic, topic_name
from producers.collect import publish_simulation
from producers.history import file_records, replay
from producers.http import HttpCollector, RetryPolicy, payload_event_id, source_spec
from producers.publisher import Publisher
from producers.simulator import Simulator
from tests.fixtures_path import AN_V2_FIXTURE, ODDS_API, PINNACLE, SBD, SBD_ONE, SBRO
from tests.support.loopback import LoopbackSource
from tests.support.rawtopic import read_raw

CAPTURES = [
    ("odds_api", "/v4/sports/baseball_mlb/odds", ODDS_API),
    ("sbd", "/v2/matchups/mlb/betting-splits", SBD),
    ("sbd", "/v2/matchups/mlb/betting-splits", SBD_ONE),
    # no real Action Network scoreboard capture exists in tests/fixtures; the team's fixture
    ("action_network", "/web/v1/scoreboard/mlb", AN_V2_FIXTURE),
]  # fmt: skip


@pytest.mark.parametrize(("source", "path", "capture"), CAPTURES, ids=lambda v: str(v)[-28:])
async def test_each_capture_arrives_byte_identical(
    settings: Settings, source: str, path: str, capture: Path
) -> None:
    body = capture.read_bytes()
    server = LoopbackSource({path: body}, quota=10 if source == "odds_api" else None)
    await server.start()
    publisher = Publisher(settings, source)
    try:
        async with aiohttp.ClientSession() as session:
            c = HttpCollector(
                source_spec(source, server.base_url, min_interval=0.0),
                publisher,
                session,
                RetryPolicy(timeout=5.0),
                api_key="test-key" if source == "odds_api" else None,
            )
            poll = await c.poll_once()
    finally:
        stats = publisher.close()
        await server.close()
    assert poll.outcome == "published" and stats.acked == 1 and stats.failed == 0
    (rec,) = read_raw(settings, source)
    assert rec["payload"] == body
    assert rec["event_id"] == payload_event_id(source, body) == rec["_key"].decode()
    assert rec["source"] == source and rec["content_type"] == "application/json"
    assert rec["request"]["status"] == "200" and "test-key" not in json.dumps(rec["request"])
    assert parse(rec).lines, "the staging parser reads what the collector published"


async def test_misbehaving_server_publishes_each_response_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "oddsflow.collect")
    body = CAPTURES[1][2].read_bytes()
    server = LoopbackSource({CAPTURES[1][1]: body})
    server.script = ["429:0.2", "500", "slow:1", "truncated", "html"]
    await server.start()
    publisher = Publisher(settings, "sbd")
    policy = RetryPolicy(attempts=6, base_delay=0.02, timeout=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            c = HttpCollector(
                source_spec("sbd", server.base_url, min_interval=0.0),
                publisher,
                session,
                policy,
                rng=random.Random(5),
            )
            polls = [await c.poll_once() for _ in range(3)]  # misbehaving, ok, ok (unchanged)
    finally:
        stats = publisher.close()
        await server.close()
    assert [p.outcome for p in polls] == ["published", "unchanged", "unchanged"]
    assert polls[0].attempts == 6 and len(server.hits) == 8
    assert polls[0].delays[0] == 0.2  # Retry-After
    assert polls[0].delays[1:] == sorted(polls[0].delays[1:])
    assert stats.acked == 1
    records = read_raw(settings, "sbd")
    assert [r["payload"] for r in records] == [body]
    assert "sbd poll 1: 15 records, changed, published" in caplog.text
    assert "sbd poll 2: 15 records, unchanged, not published" in caplog.text


def test_pinnacle_replay_every_row_once_in_event_time_order(settings: Settings) -> None:
    records = file_records(PINNACLE)
    publisher = Publisher(settings, "file")
    assert publisher.connect()  # as the collector does: the topic made with the catalog's configs
    res = replay(publisher, records)
    assert res.stats.acked == 1906 and res.stats.failed == 0
    got = read_raw(settings, "file")
    assert len(got) == 1906
    assert Counter(r["event_id"] for r in got) == Counter(
        f"{PINNACLE.name}:{n}" for n in range(2, 1908)
    )
    rows = PINNACLE.read_bytes().split(b"\n")
    for r in got[::97]:
        line = int(r["event_id"].rsplit(":", 1)[1])
        assert r["payload"] == rows[line - 1] and r["request"]["format"] == "pinnacle"
    games: dict[bytes, set[int]] = {}
    for r in got:
        (game,) = parse(r).games  # the key is the game id staging computes
        assert r["_key"] == game["game_id"].encode()
        games.setdefault(r["_key"], set()).add(r["_partition"])
        entered = datetime.fromisoformat(r["payload"].split(b",")[9].decode())
        assert r["_timestamp"] == int(entered.timestamp() * 1000)  # the row's recorded time
    assert len(games) == 21 and all(len(ps) == 1 for ps in games.values())  # one partition each
    assert len({p for ps in games.values() for p in ps}) == settings.kafka.partitions
    for key in games:  # a game's rows in its partition's (offset) order are in event-time order
        stamps = [r["_timestamp"] for r in got if r["_key"] == key]
        assert stamps == sorted(stamps)


def test_history_topics_are_kept_by_size_and_every_raw_topic_takes_the_limit(
    settings: Settings,
) -> None:
    """Old record timestamps under time retention would be deleted at the next check."""
    auto = Publisher(settings, "simulator")  # published to before any connect: auto-created
    auto.publish_encoded(b"k", b"v")
    assert auto.close().acked == 1
    for source in ("file", "simulator", "odds_api"):
        assert Publisher(settings, source).connect()  # makes or aligns the topic
    admin = AdminClient(client_config(settings))
    names = {s: topic_name(settings, raw_topic(s)) for s in ("file", "simulator", "odds_api")}
    res = admin.describe_configs([ConfigResource("topic", t) for t in names.values()])
    cfg = {r.name: f.result() for r, f in res.items()}
    retained = settings.pipeline.retention.history_retention_bytes
    for source in ("file", "simulator"):
        assert cfg[names[source]]["retention.ms"].value == "-1"
        assert cfg[names[source]]["retention.bytes"].value == str(retained)
    days = settings.pipeline.retention.raw_retention_days
    assert cfg[names["odds_api"]]["retention.ms"].value == str(days * DAY_MS)
    for t in names.values():
        assert int(cfg[t]["max.message.bytes"].value) == raw_record_max_bytes(settings)
        assert raw_record_max_bytes(settings) > settings.collectors.max_payload_bytes >= 8 << 20


def test_sbro_replay_numbers_doubleheaders(settings: Settings) -> None:
    res = replay(Publisher(settings, "file"), file_records(SBRO))
    assert res.stats.acked == 2464
    got = read_raw(settings, "file")
    assert len(got) == 2464 == len({r["event_id"] for r in got})
    numbers = Counter(r["request"]["game_number"] for r in got)
    assert numbers["2"] >= 3 and numbers["1"] + numbers["2"] == 2464
    game_ids = Counter(ln["game_id"] for r in got for ln in parse(r).lines[:1])
    assert max(game_ids.values()) == 1, "each doubleheader game has its own game id"


def test_jsonl_round_trip(settings: Settings, tmp_path: Path) -> None:
    """Archive envelopes as JSON lines, replay them, and the staging parser sees the same data."""
    originals = []
    for i, (source, _, capture) in enumerate(CAPTURES[:3]):
        originals.append(
            {
                "event_id": f"arch-{i}",
                "source": source,
                "fetched_at": f"2025-06-13T1{i}:00:00Z",
                "content_type": "application/json",
                "payload": capture.read_text(),
                "request": {"url": "https://example/x"},
            }
        )
    f = tmp_path / "archive.jsonl"
    # written out of order: the replay sorts by fetched_at
    f.write_text("\n".join(json.dumps(o) for o in reversed(originals)) + "\n")
    res = replay(Publisher(settings, "file"), file_records(f))
    assert res.stats.acked == 3
    got = sorted(read_raw(settings, "file"), key=lambda r: r["event_id"])
    assert [r["event_id"] for r in got] == ["archive.jsonl:1", "archive.jsonl:2", "archive.jsonl:3"]
    lines = f.read_bytes().split(b"\n")
    for r in got:
        n = int(r["event_id"].split(":")[1])
        assert r["payload"] == lines[n - 1] and r["request"]["format"] == "jsonl"
        inner = json.loads(r["payload"])
        direct = parse({**inner, "fetched_at": datetime.fromisoformat(inner["fetched_at"])})
        via_archive = parse(r)
        assert len(via_archive.lines) == len(direct.lines) > 0
        assert {ln["source_event_id"] for ln in via_archive.lines} == {r["event_id"]}


def test_simulator_publishes_its_snapshots_once_each_keyed_by_game(settings: Settings) -> None:
    start = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)
    sim = dict(seed=5, games=3, books=4, ticks=25, start=start)  # 300 records, ticks 0..24
    pub = publish_simulation(settings, Simulator(**sim), progress=False)
    assert pub.stats.sent == pub.stats.acked == 300 and pub.stats.failed == 0
    expected = {eid: (payload, fetched) for eid, payload, fetched in Simulator(**sim).envelopes()}
    got = read_raw(settings, "simulator")
    assert sorted(r["event_id"] for r in got) == sorted(expected)
    for r in got:
        assert (r["payload"], r["fetched_at"]) == expected[r["event_id"]]
        assert r["_timestamp"] == int(r["fetched_at"].timestamp() * 1000)  # the tick's fetch
        assert r["request"] == {"seed": "5"} and r["content_type"] == "application/json"
        assert r["_key"].decode() == Simulator.key_of(r["event_id"])
    for p in {r["_partition"] for r in got}:  # one game's snapshots stay in tick order
        for key in {r["_key"] for r in got if r["_partition"] == p}:
            ticks = [int(r["event_id"].rsplit("-t", 1)[1]) for r in got if r["_key"] == key]
            assert ticks == sorted(ticks)


def test_publish_all_stops_when_asked_and_counts_only_acks(settings: Settings) -> None:
    sim = Simulator(seed=6, games=5, books=10, ticks=50)  # 2,500 records
    pub = Publisher(settings, "simulator")
    sent = pub.publish_all(sim.records(pub.layout()), stop=lambda: True)  # asked every 1,000
    stats = pub.close()
    assert sent == stats.sent == stats.acked == 1000 and stats.failed == 0
    assert len(read_raw(settings, "simulator")) == 1000


def test_bench_reports_acked_counts(settings: Settings) -> None:
    from bench.publish_rate import bench_publish, bench_replay

    pub = bench_publish(settings, 3000)
    assert pub["incl_generation_acked"] == pub["pregenerated_acked"] == 3000
    assert pub["failed"] == 0
    assert pub["generate_per_second"] > 0 and pub["incl_generation_per_second"] > 0
    assert pub["pregenerated_per_second"] > 0
    rep = bench_replay(settings)
    assert rep["records"] == rep["in_file"] == 1906 and rep["failed"] == 0
    from tests.support.rawtopic import count_raw

    assert count_raw(settings, "simulator") == 6000 and count_raw(settings, "file") == 1906
