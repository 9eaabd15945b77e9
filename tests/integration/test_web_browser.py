"""``oddsflow web`` in headless Chromium, against the real pipeline (workers, broker, database).

- The game page is open while the simulator injects a steam move; the steam marker must arrive on
  the moneyline chart over server-sent events (no reload), matching what the sink writes.
- The operations page shows the staging lag growing, record for record, while that worker is
  stopped, with the Burrow status STOP.

Chromium is Debian's (``apt-get install -y chromium``), driven by Playwright for Python; the
tests skip when either is missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oddsflow.settings import Settings
from producers.publisher import Publisher
from producers.simulator import ScriptedJump, Simulator
from streams.domain.games import game_id as make_game_id
from tests.conftest import settings_env
from tests.helpers import wait_for, workers

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The README's screenshots are refreshed only on request; otherwise they go to a temp folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("ODDSFLOW_UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "oddsflow-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
# CI installs chromium (.ci/run), so there a missing browser fails instead of skipping.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="chromium not installed (apt-get install -y chromium)",
)

TICK = 30
MOVERS = ("pinnacle", "draftkings", "fanduel")  # the first three books of the simulator
STEAM_TICKS = (34, 36, 38)  # 15 cents toward home each, 4 minutes from first to last
PHASE_TWO_FROM = 30  # ticks before this are published before the page opens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> Any:
    import json

    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@contextmanager
def web_server(settings: Settings, log_dir: Path, ops_interval: float = 1.0) -> Iterator[str]:
    """``python -m oddsflow.web`` (what ``oddsflow web`` runs) on a free port; its base URL."""
    port = _free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "web.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oddsflow.web", "--port", str(port),
             "--ops-interval", str(ops_interval)],
            stdout=log, stderr=subprocess.STDOUT, env=settings_env(settings),
            start_new_session=True,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == 0, (log_dir / "web.log").read_text()[-3000:]


async def _live_ready(base: str) -> None:
    """The server answers and its live feed is assigned to the topics (following from now)."""

    async def probe() -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(_get_json, base + "/healthz")
        except OSError:
            return None

    await wait_for(probe, lambda h: bool(h and h["live_ready"]), timeout=30, what="web server")


@asynccontextmanager
async def browser_page() -> AsyncIterator[Any]:
    """A headless Chromium page; a script error or a request off this host fails the test."""
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            elsewhere: list[str] = []  # the pages must work offline: nothing but our server
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith("http://127.0.0.1:") else elsewhere.append(r.url)
                ),
            )
            yield page
            assert not errors, errors
            assert not elsewhere, elsewhere
        finally:
            await browser.close()


def _publish(settings: Settings, sim: Simulator, ticks: range) -> int:
    """Publish the simulator's snapshots of ``ticks`` (as the collector does); acked count."""
    assert sim.start is not None
    lo = sim.start + timedelta(seconds=ticks.start * sim.tick_seconds)
    hi = sim.start + timedelta(seconds=ticks.stop * sim.tick_seconds)
    pub = Publisher(settings, "simulator")
    for event_id, payload, fetched_at in sim.envelopes():
        if lo <= fetched_at - timedelta(seconds=1) < hi:
            pub.publish(event_id, payload, fetched_at, key=sim.key_of(event_id))
    stats = pub.close()
    assert stats.failed == 0, stats.errors
    return stats.acked


async def test_steam_marker_appears_live_on_the_game_chart(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    sim = Simulator(
        seed=5, games=1, books=4, ticks=60, tick_seconds=TICK,
        scripted_jumps=(
            *(ScriptedJump(0, b, t, -15) for b, t in zip(MOVERS, STEAM_TICKS, strict=True)),
            # a later change more than the allowed lateness (10 min) on releases the steam move
            ScriptedJump(0, "betmgm", 59, 5),
        ),
    )  # fmt: skip
    game = sim.schedule[0]
    gid = make_game_id(game.commence, game.away, game.home, 1)
    assert sim.start is not None
    last_mover_at = sim.start + timedelta(seconds=STEAM_TICKS[-1] * TICK)
    z = s.pipeline.zones
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        with (
            workers(s, ("staging", "features", "sink"), tmp_path / "logs"),
            web_server(s, tmp_path / "logs") as base,
        ):
            await _live_ready(base)
            assert _publish(s, sim, range(0, PHASE_TWO_FROM)) == PHASE_TWO_FROM * 4
            await wait_for(
                lambda: conn.fetchval(
                    f"SELECT count(DISTINCT book) FROM {z.staging}.odds_lines WHERE game_id = $1",
                    gid,
                ),
                lambda n: n == 4,
                what="the first half's lines in Postgres",
            )
            async with browser_page() as page:
                resp = await page.goto(f"{base}/game/{gid}")
                assert resp is not None and resp.status == 200
                await page.wait_for_selector("#live.on", timeout=15_000)
                before = await page.evaluate(
                    """() => {
                        window.__sameDocument = true;  // gone if the page reloads
                        const c = window.oddsflow.charts.moneyline.data.datasets;
                        return {
                          books: c.filter(d => d.kind === 'book').map(d => d.label).sort(),
                          steam: c.find(d => d.kind === 'steam').data.length,
                          counted: document.querySelector('.counts[data-market=moneyline]')
                                   .dataset.steam,
                        };
                    }"""
                )
                assert before == {
                    "books": ["betmgm", "draftkings", "fanduel", "pinnacle"],
                    "steam": 0,
                    "counted": "0",
                }

                # the steam move happens now, with the page open
                assert _publish(s, sim, range(PHASE_TWO_FROM, 60)) == 30 * 4
                await page.wait_for_function(
                    "() => window.oddsflow.charts.moneyline.data.datasets"
                    ".find(d => d.kind === 'steam').data.length > 0",
                    timeout=120_000,
                    polling=250,
                )
                marker = await page.evaluate(
                    """() => {
                        const d = window.oddsflow.charts.moneyline.data.datasets
                            .find(d => d.kind === 'steam');
                        const m = d.data[0];
                        return {
                          same: window.__sameDocument === true, n: d.data.length,
                          id: m.id, x: m.x, y: m.y, direction: m.move.direction,
                          books: m.move.books, unit: m.move.unit,
                          listed: [...document.querySelectorAll('#signals-moneyline li.steam')]
                                  .map(li => li.dataset.id),
                          counted: document.querySelector('.counts[data-market=moneyline]')
                                   .dataset.steam,
                          received: Number(document.getElementById('live').dataset.received),
                        };
                    }"""
                )
                assert marker["same"], "the marker must arrive live, not by reloading"
                assert marker["n"] == 1 and marker["counted"] == "1"
                assert marker["direction"] == "home" and marker["unit"] == "cents"
                assert set(MOVERS) <= set(marker["books"])
                assert marker["x"] == int(last_mover_at.timestamp() * 1000)
                assert marker["listed"] == [marker["id"]]
                assert 0 < marker["y"] < 100 and marker["received"] > 0

                # the same move is what the sink wrote
                row = await wait_for(
                    lambda: conn.fetchrow(
                        f"SELECT move_id, detected_at, direction FROM {z.curated}.steam_moves"
                        " WHERE game_id = $1 AND market = 'moneyline'",
                        gid,
                    ),
                    lambda r: r is not None,
                    what="the steam move in Postgres",
                )
                assert row["move_id"] == marker["id"] and row["detected_at"] == last_mover_at

                # the games page flags the game
                games = await browser_games_row(page, base, gid)
                assert games == {"steam": "1", "href": f"/game/{gid.replace('@', '%40')}"}
                await page.goto(f"{base}/game/{gid}")
                await page.wait_for_selector("#live.on", timeout=15_000)

                # consensus drawn too, then the picture for the README
                await page.wait_for_function(
                    "() => window.oddsflow.charts.moneyline.data.datasets"
                    ".find(d => d.kind === 'consensus').data.length > 10",
                    timeout=60_000,
                )
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOTS / "game.png"), full_page=True)
    finally:
        await conn.close()
    assert (SCREENSHOTS / "game.png").stat().st_size > 10_000


async def browser_games_row(page: Any, base: str, gid: str) -> dict[str, Any] | None:
    """The games page's row of one game: its steam count and link."""
    await page.goto(base + "/")
    return await page.evaluate(
        """(gid) => {
            const tr = [...document.querySelectorAll('table.games tr[data-game-id]')]
                .find(r => r.dataset.gameId === gid);
            return tr ? { steam: tr.dataset.steam,
                          href: tr.querySelector('a').getAttribute('href') } : null;
        }""",
        gid,
    )


async def _stage_row(page: Any, stage: str) -> dict[str, Any] | None:
    return await page.evaluate(
        """(stage) => {
            const tr = document.querySelector(`#stages-body tr[data-stage="${stage}"]`);
            const up = document.getElementById('ops-updated').dataset.samples;
            return tr ? { lag: Number(tr.dataset.lag), lagSeconds: Number(tr.dataset.lagSeconds),
                          status: tr.dataset.status, members: Number(tr.dataset.members),
                          samples: Number(up) } : null;
        }""",
        stage,
    )


async def test_operations_page_shows_lag_growing_while_a_worker_is_stopped(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    sims = [
        Simulator(seed=seed, games=1, books=3, ticks=20, tick_seconds=TICK) for seed in (1, 2, 3)
    ]
    with (
        workers(s, ("staging", "features", "sink"), tmp_path / "logs") as procs,
        web_server(s, tmp_path / "logs") as base,
    ):
        await _live_ready(base)
        assert _publish(s, sims[0], range(20)) == 60
        async with browser_page() as page:
            resp = await page.goto(f"{base}/ops")
            assert resp is not None and resp.status == 200

            async def staging() -> dict[str, Any] | None:
                return await _stage_row(page, "staging")

            # running and caught up: the first batch consumed and committed
            await wait_for(
                staging,
                lambda r: r is not None and r["members"] == 1 and r["lag"] == 0,
                timeout=120,
                what="staging caught up on the operations page",
            )
            procs["staging"].send_signal(signal.SIGTERM)
            assert procs["staging"].wait(timeout=30) == 0

            assert _publish(s, sims[1], range(20)) == 60
            first = await wait_for(
                staging,
                lambda r: r is not None and r["members"] == 0 and r["lag"] == 60,
                timeout=60,
                what="staging lag of the second batch",
            )
            assert first["status"] == "STOP"  # nobody consumes: Burrow's rule, at once

            assert _publish(s, sims[2], range(20)) == 60
            second = await wait_for(
                staging,
                lambda r: r is not None and r["lag"] == 120,
                timeout=60,
                what="staging lag growing with the third batch",
            )
            assert second["status"] == "STOP"
            assert second["samples"] > first["samples"]  # the page refreshed itself
            assert second["lagSeconds"] > 0

            # the chart plots the same growth
            history = await page.evaluate(
                "() => window.oddsflowOps.chart.data.datasets"
                ".find(d => d.label === 'staging').data.map(p => p.y)"
            )
            assert history[-1] == 120 and 0 in history and 60 in history
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "ops.png"), full_page=False)
            # only the stopped stage lags: the others kept running
            assert procs["features"].poll() is None and procs["sink"].poll() is None
            for stage in ("features", "sink"):
                other = await _stage_row(page, stage)
                assert other is not None and other["members"] == 1
