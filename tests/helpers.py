"""Shared test helpers: wait for a condition (never sleep blindly), run real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from oddsflow.settings import Settings
from tests.conftest import settings_env

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    timeout: float = 120.0,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(value)``; fail with the last value seen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {value!r}"
            )
        await asyncio.sleep(interval)


@contextmanager
def workers(settings: Settings, roles: tuple[str, ...], log_dir: Path) -> Iterator[dict]:
    """Run ``oddsflow worker ROLE`` processes against ``settings``; stop them afterwards."""
    env = settings_env(settings)
    verbose = ["-v"] if os.environ.get("ODDSFLOW_TEST_VERBOSE_WORKERS") else []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for role in roles:
            with open(log_dir / f"{role}.log", "wb") as log:
                procs[role] = subprocess.Popen(
                    [sys.executable, "-m", "oddsflow.cli", *verbose, "worker", role],
                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )  # fmt: skip
        yield procs
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
