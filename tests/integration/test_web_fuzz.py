"""Every route of ``oddsflow web`` answers malformed input with 4xx (or a page), never 5xx.

Each route is asked with path segments and query values a user or a scanner could send: NUL
bytes (raw and percent-encoded), control and bidi characters, overlong values, unicode, invalid
UTF-8, SQL and path-traversal strings, impossible dates and numbers. Against the real database,
so a value that reaches Postgres and is refused there (a NUL in a game id answered 500) shows.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from core.settings import Settings
from oddsflow.web import create_app

#: Values as they appear on the wire (already percent-encoded where they must be).
NASTY = [
    "%00", "a%00b", "%01%02%1b[31m", "%7f", "%e2%80%ae", "%e2%80%8b", "%f0%9f%98%80",
    "%ff%fe", "%ed%a0%80", "%c0%af", quote("ñandú 東京 ä"), "a" * 300, "a" * 20_000,
    quote("' OR 1=1 --"), quote("'; DROP TABLE core_betting.games; --"), quote('"><script>'),
    "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fapp.py", "....//....//", "%252e%252e%252f",
    "99999999999999999999999", "-1", "1e309", "NaN", "-0", "0x10", "2026-13-45",
    "2026-02-30", "0000-00-00", "9999-12-31", "10000-01-01", "2026-04-01T25:99", "", "%20",
]  # fmt: skip
GAME_ROUTES = ["/game/{}", "/api/game/{}", "/events/{}"]
PLAIN_ROUTES = ["/", "/ops", "/api/games", "/api/ops", "/healthz", "/favicon.ico"]
QUERY_KEYS = ["date", "x", "game_id", "%00"]


@pytest.fixture
async def client(pipeline_settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(pipeline_settings, ops_interval=60.0, live=False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _status(client: TestClient, path: str) -> int:
    """The status line only: an event stream that was accepted is closed at once."""
    resp = await client.get(URL(path, encoded=True), allow_redirects=False)
    status = resp.status
    resp.close()
    return status


async def test_path_segments_never_answer_5xx(client: TestClient) -> None:
    bad = []
    for route, value in itertools.product(GAME_ROUTES, NASTY):
        path = route.format(value)
        status = await _status(client, path)
        if status >= 500:
            bad.append((path[:80], status))
    for value in NASTY:
        status = await _status(client, f"/static/{value}")
        if status >= 500:
            bad.append((f"/static/{value}"[:80], status))
    assert not bad, bad


async def test_query_parameters_never_answer_5xx(client: TestClient) -> None:
    bad = []
    routes = [*PLAIN_ROUTES, "/game/no-such-game"]
    for route, key, value in itertools.product(routes, QUERY_KEYS, NASTY):
        path = f"{route}?{key}={value}"
        status = await _status(client, path)
        if status >= 500:
            bad.append((path[:80], status))
    assert not bad, bad


async def test_malformed_ids_and_dates_are_refused_with_the_reason(client: TestClient) -> None:
    for path in ("/game/%00", "/api/game/a%00b", "/events/%00", "/game/" + "a" * 300):
        resp = await client.get(URL(path, encoded=True))
        assert resp.status == 400, path
        assert "game id" in await resp.text()
    for path in ("/?date=2026-13-45", "/api/games?date=%00", "/api/games?date=9999-99-99"):
        resp = await client.get(URL(path, encoded=True))
        assert resp.status == 400, path
        assert "date must be YYYY-MM-DD" in await resp.text()
    assert (await client.get("/game/no-such-game")).status == 404
