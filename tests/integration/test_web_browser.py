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
import itertools
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

from core.domain.games import game_id as make_game_id
from core.settings import Settings
from producers.publisher import Publisher
from producers.simulator import ScriptedJump, Simulator
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


async def _assert_lag_chart_draws(page: Any) -> None:
    """The lag chart's time axis reads forward and its points are drawn inside the plot: a
    point per sample of each stage, on canvas pixels of the stage's colour."""
    chart = await page.evaluate(
        """() => {
            const c = window.oddsflowOps.chart, x = c.scales.x, a = c.chartArea;
            const points = c.data.datasets.flatMap((d, i) =>
                c.getDatasetMeta(i).data.map((e) => [e.x, e.y]));
            const samples = c.data.datasets.reduce((n, d) => n + d.data.length, 0);
            const ctx = c.canvas.getContext("2d");
            const px = ctx.getImageData(a.left, a.top, a.right - a.left, a.bottom - a.top).data;
            let staging = 0; // pixels of the staging line's colour, #4e79a7
            for (let i = 0; i < px.length; i += 4) {
                if (Math.abs(px[i] - 78) < 12 && Math.abs(px[i + 1] - 121) < 12
                    && Math.abs(px[i + 2] - 167) < 12) staging++;
            }
            return { values: x.ticks.map((t) => t.value), labels: x.ticks.map((t) => t.label),
                     min: x.min, max: x.max, points, samples, staging,
                     area: [a.left, a.right, a.top, a.bottom] };
        }"""
    )
    values, labels = chart["values"], chart["labels"]
    assert len(values) >= 2, chart
    assert all(a < b for a, b in itertools.pairwise(values)), values
    assert all(a < b for a, b in itertools.pairwise(labels)), labels  # the clock reads forward
    left, right, top, bottom = chart["area"]
    assert chart["samples"] > 0 and len(chart["points"]) == chart["samples"]
    assert all(left - 1 <= x <= right + 1 and top - 1 <= y <= bottom + 1
               for x, y in chart["points"]), chart  # fmt: skip
    drawn = 8 if chart["samples"] == 1 else 50  # a dot, or a line
    assert chart["staging"] > drawn, chart["staging"]  # on the canvas, in the stage's colour


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
            await _assert_lag_chart_draws(page)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "ops.png"), full_page=False)
            # only the stopped stage lags: the others kept running
            assert procs["features"].poll() is None and procs["sink"].poll() is None
            for stage in ("features", "sink"):
                other = await _stage_row(page, stage)
                assert other is not None and other["members"] == 1


@pytest.mark.parametrize(
    "span",
    [0, 60, 6 * 3600, 3 * 86400],
    ids=["one sample", "a minute", "six hours over midnight", "three days"],
)
async def test_lag_chart_axis_reads_forward_at_any_span(
    pipeline_settings: Settings, tmp_path: Path, span: int
) -> None:
    """Histories the sampler can hold — one sample, a minute, hours across midnight (UTC),
    days — drawn through the page's own render()."""
    end = 1_796_176_800.0 + 2 * 3600  # 2026-12-02T02:00Z: six hours back crosses midnight
    n = 1 if span == 0 else 120
    history = [[end - span + i * span / max(n - 1, 1), 10 * (i % 5), 1.0] for i in range(n)]
    stage = {
        "stage": "staging", "group": "g", "state": "STABLE", "members": 1, "status": "OK",
        "lag": 0, "lag_seconds": 0.0, "consumed_per_s": 0.0, "arrived_per_s": 0.0,
        "observed_at": end, "partitions": [], "history": history,
    }  # fmt: skip
    snapshot = {"samples": n, "error": None, "stages": [stage], "dead_letters": [],
                "quality": [], "interval": 3600}  # fmt: skip
    with web_server(pipeline_settings, tmp_path / "logs", ops_interval=3600) as base:
        async with browser_page() as page:
            resp = await page.goto(f"{base}/ops")
            assert resp is not None and resp.status == 200
            await page.evaluate("(d) => window.oddsflowOps.render(d)", snapshot)
            await _assert_lag_chart_draws(page)
