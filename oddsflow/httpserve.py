"""Serve an aiohttp application until SIGINT/SIGTERM: ``oddsflow web`` and ``oddsflow metrics``.

``web.run_app`` announces the address before it binds (a port in use then surfaces as a traceback
after the "serving on" line) and prints port 0 as 0; here the socket is bound first, a bind
failure is one sentence (:class:`oddsflow.errors.CommandError`), and the line names the port the
system chose.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from oddsflow.errors import CommandError


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the application starts anything (its Kafka clients
    would otherwise speak before a port in use is reported)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, OverflowError) as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except (OSError, OverflowError) as exc:
        sock.close()
        in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
        why = "the address is already in use" if in_use else getattr(exc, "strerror", None) or exc
        raise CommandError(f"cannot listen on {host}:{port}: {why}") from None
    sock.setblocking(False)
    return sock


async def _serve(
    app: web.Application, sock: socket.socket, announce: Callable[[str], None], grace: float
) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        host, bound = sock.getsockname()[:2]
        announce(f"http://{host}:{bound}/")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(
    app: web.Application,
    host: str,
    port: int,
    announce: Callable[[str], None],
    grace: float = 3.0,
) -> int:
    """Bind, call ``announce(url)``, serve until SIGINT/SIGTERM, shut down within ``grace`` s."""
    sock = _bind(host, port)
    asyncio.run(_serve(app, sock, announce, grace))
    return 0
