"""Always-on workers: ``oddsflow worker staging|features|sink|all``.

Each role has its own consumer group, so several processes of one role share partitions and take
over from each other. ``all`` supervises one process per role (same groups as running them apart)
and forwards SIGTERM/SIGINT to them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time

from oddsflow.settings import Settings

ROLES = ("staging", "features", "sink")


def run_faust(settings: Settings, role: str) -> int:
    from faust.worker import Worker

    from streams.app import create_app

    app = create_app(settings, role)
    if role == "staging":
        from streams.staging.agents import register
    else:
        from streams.features.agent import register
    register(app, settings)
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    worker = Worker(
        app, loglevel="INFO" if verbose else "WARN", quiet=not verbose, redirect_stdouts=False
    )
    worker.execute_from_commandline()
    return 0


def run_sink(settings: Settings, topics: list[str] | None) -> int:
    from sinks.connector import SinkConnector

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await SinkConnector(settings, topics=topics).run(stop)

    asyncio.run(main())
    return 0


def run_all(settings: Settings) -> int:
    procs = [
        subprocess.Popen([sys.executable, "-m", "oddsflow.cli", "worker", role]) for role in ROLES
    ]

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while any(p.poll() is None for p in procs):
        time.sleep(0.2)
    return max(p.returncode or 0 for p in procs)


def run_worker(settings: Settings, role: str, topics: list[str] | None = None) -> int:
    if role == "sink":
        return run_sink(settings, topics)
    if role == "all":
        return run_all(settings)
    return run_faust(settings, role)
