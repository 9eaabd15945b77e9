"""A loopback HTTP server that serves recorded captures and misbehaves on request.

Why it exists: there is no internet here, and the failure modes that matter (429 with
Retry-After, 5xx, slowness beyond the client's timeout, truncated JSON, an HTML error page with
status 200, an exhausted quota, bodies no collector should store) must be exercised against a
real socket and a real HTTP stack, not a mock. Tests and offline demos point a collector's
``--base-url`` at it.

``script`` is consumed one entry per request, then every request is served normally:
``ok``, ``429`` / ``429:<retry-after seconds>``, ``500``, ``503``, ``401``, ``slow:<seconds>``,
``truncated`` (the first half of the body, status 200), ``html`` (an error page, status 200).
The corpus of hostile bodies is made here, on request, never kept as files:
``nested:<depth>`` (``[[[…]]]``), ``json:<bytes>`` (a valid JSON document of that size, its text
random base64 that lz4 cannot shrink: :func:`random_json`), ``stream:<bytes>`` (the same
without Content-Length, chunked), ``binary:<bytes>`` (random bytes, application/octet-stream),
``empty``, ``ctype:<type>`` (the capture under another Content-Type), ``slowloris:<seconds>``
(headers, then a byte every 0.1 s for that long), ``reset`` (half the capture, then the
connection is aborted). ``quota`` (if set) is sent as ``x-requests-remaining`` and decremented
per request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field

from aiohttp import web

HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


#: 64 KiB of random base64: repeated, it repeats just beyond lz4's 64 KiB window, so a body of
#: it does not compress (the broker checks the compressed batch against max.message.bytes).
NOISE = base64.b64encode(random.Random(7).randbytes(48 * 1024))


def random_json(size: int) -> bytes:
    """A valid JSON document of exactly ``size`` bytes (>= 4): one string of NOISE."""
    text = NOISE * (size // len(NOISE) + 1)
    return b'["' + text[: size - 4] + b'"]'


async def _stream(
    request: web.Request, headers: dict[str, str], size: int, declared: bool
) -> web.StreamResponse:
    """``random_json(size)`` written in 64 KiB pieces (never held whole), with its
    Content-Length (``declared``) or chunked, so the reader learns its size only by reading."""
    resp = web.StreamResponse(headers=headers)
    resp.content_type = "application/json"
    if declared:
        resp.content_length = size
    else:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    left = size - 4
    with contextlib.suppress(ConnectionError):  # the reader may stop at its limit
        await resp.write(b'["')
        while left > 0:
            await resp.write(NOISE[: min(left, len(NOISE))])
            left -= len(NOISE)
        await resp.write(b'"]')
        await resp.write_eof()
    return resp


async def _hostile(
    request: web.Request, body: bytes, kind: str, arg: str, headers: dict[str, str]
) -> web.StreamResponse:
    """The corpus: responses a poller must survive (see the module's docstring)."""
    if kind == "nested":
        depth = int(arg or 100_000)
        doc = b"[" * depth + b"]" * depth
        return web.Response(body=doc, content_type="application/json", headers=headers)
    if kind in ("json", "stream"):
        return await _stream(request, headers, int(arg), declared=kind == "json")
    if kind == "binary":
        noise = random.Random(int(arg)).randbytes(int(arg))
        return web.Response(body=noise, content_type="application/octet-stream", headers=headers)
    if kind == "empty":
        return web.Response(body=b"", content_type="application/json", headers=headers)
    if kind == "ctype":
        resp = web.Response(body=body, headers=headers)
        resp.headers["Content-Type"] = arg
        return resp
    resp = web.StreamResponse(headers=headers)
    resp.content_type = "application/json"
    if kind == "slowloris":
        await resp.prepare(request)
        deadline = time.monotonic() + float(arg or 5)
        with contextlib.suppress(ConnectionError):
            for byte in itertools.cycle(body):
                if time.monotonic() > deadline:
                    break
                await resp.write(bytes((byte,)))
                await asyncio.sleep(0.1)
        return resp
    # reset: a Content-Length promising the whole capture, half of it, then the socket dies
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.abort()
    return resp


HOSTILE_KINDS = ("nested", "json", "stream", "binary", "empty", "ctype", "slowloris", "reset")


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
        if kind in HOSTILE_KINDS:
            return await _hostile(request, body, kind, arg, headers)
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
