"""A loopback HTTP server that serves recorded captures and misbehaves on request.

Why it exists: there is no internet here, and the failure modes that matter (429 with
Retry-After, 5xx, slowness beyond the client's timeout, truncated JSON, an HTML error page with
status 200, an exhausted quota) must be exercised against a real socket and a real HTTP stack,
not a mock. Tests and offline demos point a collector's ``--base-url`` at it.

``script`` is consumed one entry per request, then every request is served normally:
``ok``, ``429`` / ``429:<retry-after seconds>``, ``500``, ``503``, ``401``, ``slow:<seconds>``,
``truncated`` (the first half of the body, status 200), ``html`` (an error page, status 200).
``quota`` (if set) is sent as ``x-requests-remaining`` and decremented per request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    path: str
    query: dict[str, str]
    behaviour: str


@dataclass
class LoopbackSource:
    routes: dict[str, bytes]  # path -> body served with status 200
    script: list[str] = field(default_factory=list)
    quota: int | None = None
    hits: list[Hit] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        behaviour = self.script.pop(0) if self.script else "ok"
        self.hits.append(Hit(time.monotonic(), request.path, dict(request.query), behaviour))
        body = self.routes.get(request.path)
        if body is None:
            return web.Response(status=404, text="no such capture")
        headers = {}
        if self.quota is not None:
            self.quota = max(0, self.quota - 1)
            headers = {"x-requests-remaining": str(self.quota), "x-requests-used": "1"}
        kind, _, arg = behaviour.partition(":")
        if kind == "429":
            if arg:
                headers["Retry-After"] = arg
            return web.Response(status=429, text="slow down", headers=headers)
        if kind in ("500", "502", "503", "401", "403", "404"):
            return web.Response(status=int(kind), text=f"error {kind}", headers=headers)
        if kind == "slow":
            await asyncio.sleep(float(arg or 5))
        if kind == "truncated":
            body = body[: len(body) // 2]
        if kind == "html":
            return web.Response(body=HTML_ERROR, content_type="text/html", headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
