"""``oddsflow web`` over HTTP without a browser: status codes, escaping, the JSON the pages use."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings
from oddsflow.ops.burrow import Status
from oddsflow.ops.lag import GroupLag, PartitionLag
from oddsflow.web import create_app
from oddsflow.web.operations import rates
from oddsflow.web.pages import json_script


@pytest.fixture
async def client(pipeline_settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(pipeline_settings, live=False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_pages_answer_and_unknown_things_are_refused(client: TestClient) -> None:
    r = await client.get("/")
    assert r.status == 200 and "No games on this slate yet." in await r.text()
    assert (await client.get("/?date=not-a-date")).status == 400
    r = await client.get("/game/MLB-20260401-NYY@BOS-1")
    assert r.status == 404 and "no game MLB-20260401-NYY@BOS-1" in await r.text()
    r = await client.get("/static/chart.umd.min.js")
    assert r.status == 200 and (await r.read()).startswith(b"/*!\n * Chart.js v4.6.1")
    assert (await client.get("/static/../app.py")).status in (403, 404)


async def test_game_page_escapes_what_the_data_says(
    client: TestClient, pipeline_settings: Settings
) -> None:
    z = pipeline_settings.pipeline.zones
    evil = "</script><img src=x onerror=alert(1)>"
    conn = await asyncpg.connect(pipeline_settings.postgres.dsn)
    try:
        await conn.execute(
            f"INSERT INTO {z.staging}.odds_lines (game_id, commence_time, home_team, away_team,"
            " book, market, side, line, price_american, price_decimal, implied_prob, novig_prob,"
            " event_time, ingested_at, source, source_event_id, kafka_topic, kafka_partition,"
            " kafka_offset) VALUES ('g1', now(), $1, 'NYY', 'pinnacle', 'moneyline', 'home',"
            " NULL, -120, 1.833, 0.545, 0.53, now(), now(), 'file', 'e1', 't', 0, 0)",
            evil,
        )
    finally:
        await conn.close()
    html = await (await client.get("/game/g1")).text()
    assert evil not in html and "<img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # the heading
    data = json.loads(
        html.split('id="game-data">', 1)[1].split("</script>", 1)[0]
    )  # the JSON is still intact for the script
    assert data["home_team"] == evil and data["lines"][0]["price_american"] == -120
    listed = await (await client.get("/")).text()
    assert evil not in listed and 'href="/game/g1"' in listed


def test_json_script_cannot_close_its_element() -> None:
    out = json_script("x", {"a": "</script><script>alert(1)</script>"})
    assert out.count("</script>") == 1 and out.endswith("</script>")
    assert json.loads(out.split(">", 1)[1].rsplit("<", 1)[0]) == {
        "a": "</script><script>alert(1)</script>"
    }


def test_throughput_is_the_offset_difference_over_time() -> None:
    def sample(at: float, committed: int, end: int) -> GroupLag:
        p = PartitionLag("t", 0, committed, end, end - committed, 0.0, Status.OK)
        return GroupLag("g", "STABLE", 1, at, [p])

    r = rates(sample(100.0, 10, 50), sample(104.0, 30, 90))
    assert (r.consumed_per_s, r.arrived_per_s) == (5.0, 10.0)
    assert rates(None, sample(1.0, 0, 0)).consumed_per_s == 0.0


async def test_operations_json_groups_dead_letters_and_rates_quality(
    client: TestClient, pipeline_settings: Settings
) -> None:
    ops = pipeline_settings.pipeline.zones.operational
    prefix = pipeline_settings.kafka.topic_prefix
    # every reason differs (they name the event and the value): grouped by stage, source, class
    letters = [
        ("staging", "raw.odds.simulator", "unknown_team", "event sim-1: team 'Gotham Knights'"),
        ("staging", "raw.odds.simulator", "unknown_team", "event sim-2: team 'Metropolis Meteors'"),
        ("staging", "raw.odds.simulator", "unknown_team", "event sim-3: team 'Star City Rockets'"),
        ("staging", "raw.odds.sbd", "bad_price", "price 12 is not an American price"),
        ("sink", "raw.odds.simulator", "bad_marker", "starts with '00ff'"),
    ]
    conn = await asyncpg.connect(pipeline_settings.postgres.dsn)
    try:
        for offset, (stage, origin, error_class, reason) in enumerate(letters):
            await conn.execute(
                f"INSERT INTO {ops}.dead_letters (stage, origin_topic, origin_partition,"
                " origin_offset, original, error_class, reason, failed_at, kafka_topic,"
                " kafka_partition, kafka_offset) VALUES ($1, $2, 0, $3, '\\x00',"
               " $4, $5, now() + make_interval(secs => $3::bigint), 'dlq.staging', 0, $3)",
                stage, prefix + origin, offset, error_class, reason,
            )  # fmt: skip
        for minute, (records, promoted, dead) in enumerate([(100, 90, 10), (100, 70, 30)]):
            await conn.execute(
                f"INSERT INTO {ops}.quality (source, stage, window_start, records_in, promoted,"
                " deduplicated, dead_lettered, pass_rate, emitted_at, kafka_topic,"
                " kafka_partition, kafka_offset) VALUES ('sbd', 'staging',"
                " now() - make_interval(mins => $1), $2, $3, 0, $4, $5, now(),"
                " 'operational.quality', 0, $1)",
                10 - minute,
                records,
                promoted,
                dead,
                promoted / records,
            )
    finally:
        await conn.close()
    data = await (await client.get("/api/ops")).json()
    assert [(d["stage"], d["source"], d["error_class"], d["count"]) for d in
            data["dead_letters"]] == [
        ("staging", "simulator", "unknown_team", 3),
        ("sink", "simulator", "bad_marker", 1),
        ("staging", "sbd", "bad_price", 1),
    ]  # fmt: skip
    assert data["dead_letters"][0]["example"] == "event sim-3: team 'Star City Rockets'"
    (q,) = data["quality"]
    assert q["source"] == "sbd" and q["records_in"] == 200
    assert q["pass_rate"] == pytest.approx(0.8) and q["latest_pass_rate"] == pytest.approx(0.7)
    assert [s["stage"] for s in data["stages"]] == ["staging", "features", "sink"]
    html = await (await client.get("/ops")).text()
    assert "unknown_team" in html and "Star City Rockets" in html and "80.0%" in html
