"""Liveness and readiness over HTTP: ``/live`` and ``/ready`` of a long-running process.

The workers (``oddsflow worker``) and the HTTP collectors (``oddsflow collect --health-port``)
serve the same endpoints: a heartbeat task proves the event loop turns (``/live``), and the
process says whether it does its job (``/ready``); 200 or 503 with a JSON body. Here, in the
core, because a stage (the collectors) and the application (the worker supervisor) both serve it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

HEARTBEAT_SECONDS = 0.5
#: Liveness fails when the heartbeat is older than this: the event loop is stuck.
LIVE_STALE_SECONDS = 10.0

log = logging.getLogger("oddsflow.worker")  # the workers' logger: `oddsflow worker` shows it


class Probe:
    """What /live and /ready report for one worker process."""

    def __init__(self, role: str, ready: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.role = role
        self._ready = ready
        self.beat = time.monotonic()
        self.loop_lag = 0.0  # how late the last heartbeat woke up (seconds)

    async def heartbeat(self) -> None:
        """Proves the loop turns: a blocked loop stops updating ``beat``."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(HEARTBEAT_SECONDS)
            now = time.monotonic()
            self.loop_lag = max(now - before - HEARTBEAT_SECONDS, 0.0)
            self.beat = now

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.beat
        return age < LIVE_STALE_SECONDS, {
            "role": self.role,
            "pid": os.getpid(),
            "heartbeat_age_s": round(age, 3),
            "loop_lag_ms": round(self.loop_lag * 1000, 1),
        }

    def ready(self) -> tuple[bool, dict[str, Any]]:
        try:
            ok, details = self._ready()
        except Exception as exc:  # not started yet, or torn down: not ready, say why
            ok, details = False, {"error": str(exc) or type(exc).__name__}
        return ok, {"role": self.role, "pid": os.getpid(), **details}


def health_app(probe: Probe) -> web.Application:
    """``/live`` and ``/ready``: 200 or 503 with a JSON body."""

    def answer(result: tuple[bool, dict[str, Any]]) -> web.Response:
        ok, body = result
        return web.json_response({"ok": ok, **body}, status=200 if ok else 503)

    async def live(_request: web.Request) -> web.Response:
        return answer(probe.live())

    async def ready(_request: web.Request) -> web.Response:
        return answer(probe.ready())

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    return app


async def serve_health(probe: Probe, port: int, what: str = "") -> None:
    """Run the heartbeat and (when ``port``) the endpoints of ``what`` (default: the role's
    worker; a collector's too) until cancelled."""
    beat = asyncio.create_task(probe.heartbeat())
    runner: web.AppRunner | None = None
    try:
        if port:
            runner = web.AppRunner(health_app(probe), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            what = what or f"{probe.role} worker"
            log.info("%s health on http://127.0.0.1:%d/live and /ready", what, port)
        await asyncio.Event().wait()
    finally:
        beat.cancel()
        if runner is not None:
            await runner.cleanup()
