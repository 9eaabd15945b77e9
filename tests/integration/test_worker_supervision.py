"""``oddsflow worker all`` is a supervisor: a worker that dies on its own is started again
(an agent error exits a worker with status 70 so that it resumes from committed state), and
SIGTERM stops everything without restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from core.settings import Settings
from oddsflow.worker import ROLES
from tests.conftest import settings_env
from tests.helpers import wait_for


def free_port_base() -> int:
    """A port p with p .. p+2 free (worker all gives role i the port base + i)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 2 < 65536:
            return base


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


async def test_a_killed_worker_is_started_again_and_sigterm_stops_all(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    data = pipeline_settings.model_dump()
    data["pipeline"]["mode"] = "raw_only"  # one worker (the sink): quick to start
    data["worker"]["health_port"] = base = free_port_base()
    port = base + ROLES.index("sink")
    s = Settings(**data)
    log_path = tmp_path / "all.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oddsflow.cli", "worker", "all"], env=settings_env(s),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        async def kids() -> list[int]:
            return children(proc.pid)

        async def sink_ready() -> bool:
            return ready(port)

        (first,) = await wait_for(kids, lambda k: len(k) == 1, timeout=60, what="the sink")
        await wait_for(sink_ready, bool, timeout=60, what="the sink ready")
        os.kill(first, signal.SIGKILL)
        (second,) = await wait_for(
            kids, lambda k: len(k) == 1 and k[0] != first, timeout=60, what="a new sink"
        )
        assert second != first and proc.poll() is None
        await wait_for(sink_ready, bool, timeout=60, what="the new sink ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert children(proc.pid) == [] if Path(f"/proc/{proc.pid}").exists() else True
        text = log_path.read_text()
        assert "the sink worker exited with code -9; starting it again" in text
        assert text.count("starting it again") == 1  # SIGTERM did not restart anything
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
