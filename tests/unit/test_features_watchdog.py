"""A features worker whose loop stops turning exits (status 70) and says where it was stuck.

The process runs the real watchdog on a worker whose heartbeat is old; nothing else is faked."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, threading, time
logging.basicConfig(level=logging.WARNING)
from oddsflow.settings import Settings
from streams.features.worker import STALL_EXIT_SECONDS, FeaturesWorker
w = FeaturesWorker(Settings())
w.doing = "committing"
w.beat = time.monotonic() - STALL_EXIT_SECONDS - 1
w._watch(threading.Event())
"""


def test_a_stuck_loop_exits_with_70_and_its_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 70, done.stderr[-2000:]
    assert "has not turned for" in done.stderr and "(committing)" in done.stderr
    assert "in _watch" in done.stderr  # the thread dump: where every thread was
