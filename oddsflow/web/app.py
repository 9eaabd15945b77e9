"""``oddsflow web``: the aiohttp application, its routes and the command line.

Pages are rendered on the server from Postgres; the game page then follows the live feed over
server-sent events (one-way, reconnects by itself, plain HTTP: all a chart that only receives
needs), and the operations page polls a JSON snapshot the background sampler keeps fresh.
Binds 127.0.0.1 unless told otherwise: the view has no authentication.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from core.argtypes import port_or_zero, positive_float
from core.settings import Settings
from oddsflow.web import pages, queries
from oddsflow.web.live import LiveFeed
from oddsflow.web.operations import OpsSampler

log = logging.getLogger("oddsflow.web")
STATIC = Path(__file__).resolve().parent / "static"
HEARTBEAT_SECONDS = 15.0
SSE_QUEUE = 10_000

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", dict)
LIVE = web.AppKey("live", LiveFeed)
OPS = web.AppKey("ops", OpsSampler)
CLOSING = web.AppKey("closing", asyncio.Event)


class DatabaseUnavailable(RuntimeError):
    pass


async def pool_of(app: web.Application) -> asyncpg.Pool:
    """The connection pool, created on first use so the server starts while Postgres is away."""
    holder = app[POOL]
    if holder.get("pool") is None:
        try:
            holder["pool"] = await asyncpg.create_pool(
                app[SETTINGS].postgres.dsn, min_size=1, max_size=4, timeout=5
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise DatabaseUnavailable(str(exc)) from None
    return holder["pool"]


# -- input --------------------------------------------------------------------------------

#: Longest game id accepted: ours are ~40 characters (``MLB-20260401-NYY@BOS-1``).
MAX_GAME_ID = 200


def game_id_of(request: web.Request) -> str:
    """The route's game id, refused (400) unless printable text of sane length: Postgres refuses
    a NUL byte in text with an error, which answered 500."""
    game_id = request.match_info["game_id"]
    printable = all(ch.isprintable() or ch == " " for ch in game_id)
    if not game_id or len(game_id) > MAX_GAME_ID or not printable:
        raise web.HTTPBadRequest(
            text=f"a game id is printable text of at most {MAX_GAME_ID} characters"
        )
    return game_id


def slate_of(request: web.Request) -> tuple[datetime, datetime]:
    """The slate asked for with ``?date=YYYY-MM-DD`` (400 if that is not a date)."""
    try:
        return queries.today_window(request.query.get("date"))
    except (ValueError, OverflowError):
        raise web.HTTPBadRequest(text="date must be YYYY-MM-DD") from None


# -- pages ----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    day = request.query.get("date")
    start, end = slate_of(request)
    async with (await pool_of(request.app)).acquire() as conn:
        games = await queries.games(conn, request.app[SETTINGS], start, end)
    slate = f"{day} (UTC)" if day else "today: first pitch from 6 h ago to 30 h ahead"
    return web.Response(text=pages.games_page(games, slate), content_type="text/html")


async def game_page(request: web.Request) -> web.Response:
    game_id = game_id_of(request)
    async with (await pool_of(request.app)).acquire() as conn:
        game = await queries.game(conn, request.app[SETTINGS], game_id)
    if game is None:
        return web.Response(
            text=pages.not_found(f"no game {game_id}"), status=404, content_type="text/html"
        )
    return web.Response(text=pages.game_page(game), content_type="text/html")


async def ops_data(app: web.Application) -> dict[str, Any]:
    sampler = app[OPS]
    sampler.wanted()
    if sampler.samples == 0 and sampler.error is None:
        await sampler.sample_once()  # the first viewer should not wait for the interval
    data = sampler.snapshot()
    try:
        async with (await pool_of(app)).acquire() as conn:
            data["dead_letters"] = await queries.dead_letters(conn, app[SETTINGS])
            data["quality"] = await queries.quality(conn, app[SETTINGS])
    except (DatabaseUnavailable, asyncpg.PostgresError) as exc:
        data["dead_letters"], data["quality"] = [], []
        data["db_error"] = str(exc)
    data["interval"] = sampler.interval
    return data


async def ops_page(request: web.Request) -> web.Response:
    data = await ops_data(request.app)
    html = pages.ops_page(data, data["dead_letters"], data["quality"])
    return web.Response(text=html, content_type="text/html")


# -- JSON -----------------------------------------------------------------------------------


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, default=str))


async def api_games(request: web.Request) -> web.Response:
    start, end = slate_of(request)
    async with (await pool_of(request.app)).acquire() as conn:
        return _json(await queries.games(conn, request.app[SETTINGS], start, end))


async def api_game(request: web.Request) -> web.Response:
    async with (await pool_of(request.app)).acquire() as conn:
        game = await queries.game(conn, request.app[SETTINGS], game_id_of(request))
    if game is None:
        raise web.HTTPNotFound()
    return _json(game)


async def api_ops(request: web.Request) -> web.Response:
    return _json(await ops_data(request.app))


async def healthz(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    return _json({"ok": True, "live_ready": live.ready.is_set(), "live_received": live.received})


async def favicon(request: web.Request) -> web.Response:
    """No icon: answer 204 so browsers do not log a 404 on every page."""
    return web.Response(status=204)


# -- server-sent events ---------------------------------------------------------------------


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """One game's live records: what the feed buffered since start-up, then each as it comes."""
    game_id = game_id_of(request)
    live = request.app[LIVE]
    closing = request.app[CLOSING]
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue(SSE_QUEUE)

    def listener(event: str, rec: dict[str, Any]) -> None:
        try:
            queue.put_nowait((event, rec))
        except asyncio.QueueFull:  # a stalled browser: tell it to reload rather than grow
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    backlog = live.subscribe(game_id, listener)
    try:
        await resp.write(b"retry: 2000\n\n" + _sse("hello", {"buffered": len(backlog)}))
        for event, rec in backlog:
            await resp.write(_sse(event, rec))
        while not closing.is_set():
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await resp.write(b": heartbeat\n\n")
                continue
            if item is None:
                await resp.write(_sse("reload", {}))
                break
            await resp.write(_sse(*item))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        live.unsubscribe(game_id, listener)
    return resp


# -- the application ------------------------------------------------------------------------


@web.middleware
async def db_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A database that does not answer is a 503 with the reason, not a stack trace; input the
    database refuses as malformed is the client's (400), and so is a static file name the file
    system refuses (too long: 404) — a 5xx is left for what is wrong on our side."""
    try:
        return await handler(request)
    except DatabaseUnavailable as exc:
        return web.Response(status=503, text=f"database unavailable: {exc}")
    except asyncpg.DataError as exc:
        log.info("refused malformed input on %s: %s", request.path[:200], exc)
        return web.Response(status=400, text="malformed input")
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.EINVAL, errno.ENOTDIR):
            raise web.HTTPNotFound() from None
        raise


def create_app(settings: Settings, ops_interval: float = 3.0, live: bool = True) -> web.Application:
    """The application; ``live=False`` leaves the Kafka feed off (pages only)."""
    app = web.Application(middlewares=[db_errors])
    app[SETTINGS] = settings
    app[POOL] = {}
    app[CLOSING] = asyncio.Event()
    app[OPS] = OpsSampler(settings, ops_interval)
    app.router.add_get("/", index)
    app.router.add_get("/game/{game_id}", game_page)
    app.router.add_get("/ops", ops_page)
    app.router.add_get("/api/games", api_games)
    app.router.add_get("/api/game/{game_id}", api_game)
    app.router.add_get("/api/ops", api_ops)
    app.router.add_get("/events/{game_id}", events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC, append_version=False)

    async def background(app: web.Application) -> AsyncIterator[None]:
        feed = LiveFeed(settings, asyncio.get_running_loop())
        app[LIVE] = feed
        if live:
            feed.start()
        sampler_task = asyncio.create_task(app[OPS].run(), name="oddsflow-web-ops")
        yield
        app[CLOSING].set()
        sampler_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler_task
        if live:
            await asyncio.to_thread(feed.stop)
        pool = app[POOL].get("pool")
        if pool is not None:
            await pool.close()

    async def on_shutdown(app: web.Application) -> None:
        app[CLOSING].set()  # lets open event streams end before the server waits on them

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(on_shutdown)
    return app


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: no auth)"
    )
    parser.add_argument(
        "--port", type=port_or_zero, default=8050, help="port (default 8050; 0: any free port)"
    )
    parser.add_argument(
        "--ops-interval", type=positive_float, default=3.0, help="seconds between two lag samples"
    )
    parser.add_argument(
        "--no-live", action="store_true", help="do not follow the topics (pages from Postgres only)"
    )


def run_web(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 1 (one line) if the port is taken."""
    from oddsflow.httpserve import serve

    app = create_app(settings, ops_interval=args.ops_interval, live=not args.no_live)
    return serve(
        app,
        args.host,
        args.port,
        lambda url: print(f"oddsflow web: serving on {url}", flush=True),
    )
