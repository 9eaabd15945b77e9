"""HTTP pollers against a real aiohttp server on 127.0.0.1 serving the real captures.

The sink here is an in-memory list (the broker round trip is in tests/integration); what is
tested is the polling discipline: retries, backoff, Retry-After, rate limit, quota, redaction.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from core.settings import load_settings
from producers.collect import _api_key
from producers.http import (
    BROKER_REFUSED,
    CONNECTION_ERROR,
    HTML_PAGE,
    HTTP_ERROR,
    INVALID_JSON,
    JSON_TOO_DEEP,
    NOT_TEXT,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    SERVER_ERROR,
    TIMEOUT,
    BodyLimits,
    RetryPolicy,
    SourceSpec,
    count_records,
    inspect_body,
    json_depth,
    payload_event_id,
    retry_after_seconds,
    run_http_collector,
    source_spec,
)
from producers.http import HttpCollector as Collector
from producers.publisher import PublishStats
from producers.refusals import Refusal
from tests.fixtures_path import ODDS_API, SBD
from tests.helpers import free_ports, stop_after_polls, wait_for
from tests.support.loopback import LoopbackSource, random_json

FAST = RetryPolicy(attempts=4, base_delay=0.02, max_delay=1.0, timeout=0.3)
KEY = "k3y-do-not-leak-9f8e7d"


class ListSink:
    """The publisher, in memory; ``refuse_next`` makes the next record fail as a broker would."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, dict[str, str]]] = []
        self.timestamps: list[datetime | None] = []
        self.stats = PublishStats()
        self.refuse_next = False

    def publish(
        self,
        event_id: str,
        payload: bytes,
        fetched_at: datetime,
        content_type: str = "application/json",
        request: dict[str, str] | None = None,
        key: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        if self.refuse_next:
            self.refuse_next = False
            self.stats.failed += 1
            self.stats.errors.append(f"{event_id}: Broker: Message size too large")
            return
        self.records.append((event_id, payload, dict(request or {})))
        self.timestamps.append(timestamp)

    def flush(self, timeout: float = 60.0) -> int:
        return 0


class ListRefusals:
    def __init__(self) -> None:
        self.refused: list[Refusal] = []

    def refuse(self, refusal: Refusal) -> None:
        self.refused.append(refusal)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackSource]:
    src = LoopbackSource(
        {
            "/v4/sports/baseball_mlb/odds": ODDS_API.read_bytes(),
            "/v2/matchups/mlb/betting-splits": SBD.read_bytes(),
        }
    )
    await src.start()
    yield src
    await src.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def spec(name: str, srv: LoopbackSource, interval: float = 0.0) -> SourceSpec:
    return source_spec(name, srv.base_url, min_interval=interval)


async def test_retries_every_misbehaviour_then_publishes_once(
    server: LoopbackSource, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "oddsflow.collect")
    server.script = ["500", "slow:1", "truncated", "html"]
    sink = ListSink()
    policy = RetryPolicy(attempts=6, base_delay=0.02, max_delay=1.0, timeout=0.3)
    c = Collector(spec("sbd", server), sink, session, policy, rng=random.Random(1))
    poll = await c.poll_once()
    assert poll.outcome == "published"
    assert poll.attempts == 5 and len(server.hits) == 5
    assert [h.behaviour for h in server.hits] == ["500", "slow:1", "truncated", "html", "ok"]
    # equal jitter: retry k waits within [b*2^k/2, b*2^k], so every wait is >= the one before
    assert len(poll.delays) == 4
    for k, d in enumerate(poll.delays):
        assert 0.01 * 2**k <= d <= 0.02 * 2**k
    assert poll.delays == sorted(poll.delays)
    gaps = [b.at - a.at for a, b in zip(server.hits, server.hits[1:], strict=False)]
    assert gaps[1] >= 0.3 + poll.delays[1] - 0.02  # the slow response hit the client timeout
    assert all(g >= d - 0.005 for g, d in zip(gaps, poll.delays, strict=True))
    assert len(sink.records) == 1
    eid, payload, req = sink.records[0]
    assert payload == SBD.read_bytes() and eid == payload_event_id("sbd", payload)
    assert req["status"] == "200" and req["url"].startswith(server.base_url)
    text = caplog.text
    for reason in ("HTTP 500", "timeout after 0.3s", "invalid JSON", "HTML page"):
        assert reason in text
    assert "sbd poll 1: 15 records, changed, published sbd-" in text
    assert "5 attempt(s)" in text


async def test_retry_after_is_honoured(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    server.script = ["429:0.3", "429"]
    sink = ListSink()
    c = Collector(spec("sbd", server), sink, session, FAST, rng=random.Random(2))
    poll = await c.poll_once()
    assert poll.outcome == "published" and poll.attempts == 3
    assert poll.delays[0] == 0.3  # Retry-After beats the 0.01-0.02 s backoff
    assert 0.02 <= poll.delays[1] <= 0.04  # no header: plain backoff
    assert server.hits[1].at - server.hits[0].at >= 0.3 - 0.005
    assert len(sink.records) == 1


async def test_giving_up_publishes_nothing_and_the_next_poll_recovers(
    server: LoopbackSource, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "oddsflow.collect")
    server.script = ["503", "503", "503", "503"]
    sink = ListSink()
    c = Collector(spec("sbd", server), sink, session, FAST, rng=random.Random(3))
    first = await c.poll_once()
    assert first.outcome == "failed" and first.attempts == 4 and len(first.delays) == 3
    assert sink.records == []
    assert "sbd poll 1: ? records, failed: HTTP 503" in caplog.text
    second, third = await c.poll_once(), await c.poll_once()
    assert (second.outcome, third.outcome) == ("published", "unchanged")
    assert len(sink.records) == 1  # the identical third response is not published again
    assert "sbd poll 3: 15 records, unchanged, not published" in caplog.text


async def test_fatal_status_stops_the_collector(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    server.script = ["401"]
    sink = ListSink()
    c = Collector(spec("odds_api", server), sink, session, FAST, api_key=KEY)
    assert await c.run(interval=0.0) == 2
    assert len(server.hits) == 1 and sink.records == []


async def test_odds_api_key_quota_and_redaction(
    server: LoopbackSource, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.quota = 3
    server.script = ["500"]  # the retry's 500 also costs quota
    sink = ListSink()
    c = Collector(spec("odds_api", server), sink, session, FAST, api_key=KEY)
    rc = await c.run(interval=0.0)
    # 500, ok (published, 1 left), ok (unchanged, 0 left): quota exhausted, polling stops
    assert rc == 0 and c.quota_exhausted
    assert [h.behaviour for h in server.hits] == ["500", "ok", "ok"]
    assert server.hits[0].query == {
        "regions": "us",
        "markets": "h2h,spreads,totals",
        "oddsFormat": "american",
        "apiKey": KEY,
    }
    assert [p.outcome for p in c.polls] == ["published", "unchanged"]
    (_, payload, req) = sink.records[0]
    assert payload == ODDS_API.read_bytes()
    assert req["x-requests-remaining"] == "1" and req["x-requests-used"] == "1"
    assert "apiKey=REDACTED" in req["url"] and KEY not in str(req)
    assert KEY not in caplog.text
    assert "odds_api poll 1: 9 records, changed, published" in caplog.text
    assert "quota left 0" in caplog.text and "quota exhausted" in caplog.text


async def test_missing_api_key_is_refused(
    server: LoopbackSource, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit, match="set ODDS_API_KEY in the environment"):
        Collector(spec("odds_api", server), ListSink(), session, FAST)
    monkeypatch.setenv("ODDS_API_KEY", KEY)  # read through the settings object, not here
    with pytest.raises(SystemExit, match="ODDS_API_KEY"):
        Collector(spec("odds_api", server), ListSink(), session, FAST)
    key = load_settings().collectors.odds_api_key
    assert key is not None and key.get_secret_value() == KEY
    c = Collector(
        spec("odds_api", server),
        ListSink(),
        session,
        FAST,
        api_key=_api_key(load_settings(), "ODDS_API_KEY"),
    )
    assert c.api_key == KEY


async def test_rate_limit_spaces_requests(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    server.script = ["500"]
    c = Collector(spec("sbd", server, interval=0.15), ListSink(), session, FAST)
    await c.poll_once()  # 500 then ok: the retry also waits for the rate limit
    await c.poll_once()
    gaps = [b.at - a.at for a, b in zip(server.hits, server.hits[1:], strict=False)]
    # the server sees a hit a few ms after the limiter lets it go (the first request opens the
    # connection; two cores are shared): 6 ms less than the interval was seen under load
    assert len(gaps) == 2 and all(g >= 0.15 - 0.01 for g in gaps)


def test_retry_after_and_record_counting() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = datetime(2025, 6, 13, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Fri, 13 Jun 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Fri, 13 Jun 2025 11:00:00 GMT", now) == 0.0
    assert count_records([1, 2, 3]) == 3
    assert count_records({"games": [1, 2]}) == 2
    assert count_records({"message": "x"}) == 1
    assert (
        payload_event_id("sbd", b"x")
        == payload_event_id("sbd", b"x")
        != payload_event_id("sbd", b"y")
    )


# ------------------------------------------------------------ a poller survives any response

MB = 1 << 20
LIMIT = BodyLimits().max_bytes  # the default of [collectors] max_payload_bytes: 8 MiB
ONE_SHOT = RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.1, timeout=0.5)
#: (what the server sends, the poll's outcome, what is recorded on dlq.collect or None)
CORPUS = [
    ("nested:100000", "refused", JSON_TOO_DEEP),  # today a RecursionError traceback
    (f"json:{LIMIT - 64 * 1024}", "published", None),  # within the limit: stored
    (f"json:{LIMIT + 1}", "refused", PAYLOAD_TOO_LARGE),  # Content-Length says so: not read
    (f"stream:{64 * MB}", "refused", PAYLOAD_TOO_LARGE),  # chunked: cut off at the limit
    (f"json:{64 * MB}", "refused", PAYLOAD_TOO_LARGE),
    ("binary:4096", "failed", NOT_TEXT),
    ("empty", "failed", INVALID_JSON),
    ("truncated", "failed", INVALID_JSON),
    ("html", "failed", HTML_PAGE),
    ("ctype:text/html; charset=utf-8", "published", None),  # JSON all the same: stored
    ("slowloris:2", "failed", TIMEOUT),  # a byte every 0.1 s: the request's 0.5 s runs out
    ("reset", "failed", CONNECTION_ERROR),  # half the body, then the connection is aborted
    ("429", "failed", RATE_LIMITED),
    ("503", "failed", SERVER_ERROR),
    ("500", "failed", SERVER_ERROR),
    ("404", "failed", HTTP_ERROR),  # fails the poll, no longer stops the collector
    ("ok", "unchanged", None),  # the capture again: same id, not published twice
]


async def test_the_poller_survives_the_corpus_and_keeps_polling(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    server.script = [behaviour for behaviour, _, _ in CORPUS]
    sink, refusals, made = ListSink(), ListRefusals(), []
    c = Collector(
        spec("odds_api", server), sink, session, ONE_SHOT, api_key=KEY,
        sleep=stop_after_polls(len(CORPUS), made), refusals=refusals,
    )  # fmt: skip
    made.append(c)
    assert await c.run(interval=0.0) == 0  # ran to the end: no exception, no fatal stop
    assert [h.behaviour for h in server.hits] == [behaviour for behaviour, _, _ in CORPUS]
    assert [p.outcome for p in c.polls] == [outcome for _, outcome, _ in CORPUS]
    assert [r.error_class for r in refusals.refused] == [cls for _, _, cls in CORPUS if cls]
    # stored: the big body byte for byte, and the capture served as text/html
    big, capture = (payload for _, payload, _ in sink.records)
    assert big == random_json(LIMIT - 64 * 1024) and capture == ODDS_API.read_bytes()
    assert sink.records[1][2]["content-type"] == "text/html; charset=utf-8"
    assert all(isinstance(t, datetime) for t in sink.timestamps)  # the fetch time
    by_class: dict[str, list[Refusal]] = {}
    for r in refusals.refused:
        by_class.setdefault(r.error_class, []).append(r)
    (deep,) = by_class[JSON_TOO_DEEP]
    assert deep.body == b"[" * 100_000 + b"]" * 100_000  # within the size limit: kept
    assert "nested 100,000 levels deep, over the limit of 64" in deep.reason
    assert deep.event_id == payload_event_id("odds_api", deep.body)
    declared, streamed, huge = by_class[PAYLOAD_TOO_LARGE]
    assert (declared.body, streamed.body, huge.body) == (b"", b"", b"")  # over: never kept
    assert f"{LIMIT + 1:,} bytes (Content-Length" in declared.reason
    assert f"{64 * MB:,} bytes (Content-Length" in huge.reason and "not read" in huge.reason
    assert "over the 8,388,608-byte limit" in streamed.reason
    stopped = int(streamed.reason.split("reading stopped at ")[1].split(" ")[0].replace(",", ""))
    assert LIMIT < stopped <= LIMIT + 64 * 1024  # one chunk past the limit, not 64 MiB
    (binary,) = by_class[NOT_TEXT]
    assert len(binary.body) == 4096 and "4,096 bytes" in binary.reason
    assert "application/octet-stream" in binary.reason
    for r in refusals.refused:  # each says which source, which poll, what was asked, when
        assert r.reason.startswith("odds_api poll ") and server.base_url in r.reason
        assert r.at.isoformat() in r.reason and KEY not in r.reason


async def test_bad_bodies_are_retried_and_each_recorded(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    server.script = ["binary:64", "empty", "ok", "503", "503", "503", "html", "503", "503"]
    sink, refusals = ListSink(), ListRefusals()
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1, timeout=0.5)
    c = Collector(spec("sbd", server), sink, session, policy, refusals=refusals)
    first, second = await c.poll_once(), await c.poll_once()
    assert (first.outcome, first.attempts, first.refusals) == ("published", 3, 2)
    assert [r.error_class for r in refusals.refused[:2]] == [NOT_TEXT, INVALID_JSON]
    assert len(sink.records) == 1
    # a 503 storm: nothing came back to store, so the poll itself is recorded, once
    assert (second.outcome, second.attempts, second.refusals) == ("failed", 3, 1)
    storm = refusals.refused[2]
    assert storm.error_class == SERVER_ERROR and storm.body == b""
    assert "poll failed after 3 attempt(s): HTTP 503; HTTP 503; HTTP 503" in storm.reason
    # an HTML page, then a 503 storm: the page is recorded, and the poll that ended on no body
    third = await c.poll_once()
    assert (third.outcome, third.refusals) == ("failed", 2)
    assert [r.error_class for r in refusals.refused[3:]] == [HTML_PAGE, SERVER_ERROR]
    assert "HTML page" in refusals.refused[4].reason and "HTTP 503" in refusals.refused[4].reason


async def test_a_body_the_broker_refuses_is_recorded_and_published_again_later(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    sink, refusals = ListSink(), ListRefusals()
    c = Collector(spec("sbd", server), sink, session, FAST, refusals=refusals)
    sink.refuse_next = True
    first = await c.poll_once()
    assert first.outcome == "failed" and sink.records == []
    (refused,) = refusals.refused
    assert refused.error_class == BROKER_REFUSED and refused.body == SBD.read_bytes()
    assert "Message size too large" in refused.reason
    second = await c.poll_once()  # the same body: not "unchanged", it never was stored
    assert second.outcome == "published" and len(sink.records) == 1


def test_json_depth_counts_nesting_outside_strings() -> None:
    assert json_depth(b"[]") == 1 and json_depth(b"") == 0 and json_depth(b"42") == 0
    assert json_depth(b'{"a": [1, {"b": "[[[[{{"}]}') == 3  # brackets in strings do not count
    assert json_depth(b'["x\\"[", [[1]]]') == 3  # an escaped quote does not end the string
    assert json_depth(b'["x\\\\", [[1]]]') == 3  # an escaped backslash does not escape
    assert json_depth(b'{"k\\\\\\"[": [[]]}') == 3
    assert json_depth('["é[ü", ["日本"]]'.encode()) == 2
    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000
    assert json_depth(ODDS_API.read_bytes()) == 8  # the real slate: event, books, markets...
    with pytest.raises(Exception, match="nested 100,000 levels deep"):
        inspect_body(b"[" * 100_000 + b"]" * 100_000, 64)
    assert inspect_body(b"[]", 64) == []  # an empty slate is a valid answer


async def test_a_poller_serves_live_and_ready_on_its_health_port(
    server: LoopbackSource,
) -> None:
    """`collect --health-port`: the workers' health server beside the poller (compose's
    healthcheck asks /ready): ready once a poll ended, saying how the last one went."""
    (port,) = free_ports(1)
    collector = run_http_collector(
        spec("sbd", server), ListSink(), 3600.0, False, FAST, install_signals=False,
        refusals=ListRefusals(), health_port=port,
    )  # fmt: skip
    running = asyncio.create_task(collector)

    async def get(path: str) -> tuple[int, dict]:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}{path}") as r,
            ):
                return r.status, await r.json()
        except aiohttp.ClientConnectionError:
            return 0, {}

    try:
        _status, ready = await wait_for(lambda: get("/ready"), lambda r: r[0] == 200, timeout=10)
        assert ready["role"] == "collector" and ready["source"] == "sbd"
        assert (ready["polls"], ready["last_outcome"]) == (1, "published")
        assert (await get("/live"))[0] == 200
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert (await get("/live"))[0] == 0  # the endpoints end with the poller


async def test_a_poller_is_ready_only_while_it_polls_on_schedule(
    server: LoopbackSource, session: aiohttp.ClientSession
) -> None:
    c = Collector(spec("sbd", server), ListSink(), session, FAST)
    ok, details = c.ready(60.0)
    assert not ok and details["polls"] == 0  # no poll ended yet
    c.polled_at = time.monotonic() - 100
    assert c.ready(60.0)[0]  # within two periods and a minute
    c.polled_at = time.monotonic() - 200
    assert not c.ready(60.0)[0]  # stuck: a restart may help
