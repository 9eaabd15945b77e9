"""A stream worker whose loop stops turning exits (status 70) and says where it was stuck.

The process runs the runtime's real watchdog on a loop whose heartbeat is old; nothing else is
faked (the orphan and no-progress rules need a broker: tests/integration/test_runtime_watchdog.py).
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, threading, time
logging.basicConfig(level=logging.WARNING)
from core.settings import Settings
from streams.features.worker import FeaturesTask
from streams.runtime.loop import TransactionalLoop
from streams.runtime.watchdog import STALL_SECONDS, Watchdog
loop = TransactionalLoop(Settings(), FeaturesTask(Settings()), "g")
loop.doing = "committing"
loop.beat = time.monotonic() - STALL_SECONDS - 1
dog = Watchdog(loop)
problem = dog.check(time.monotonic())
print("problem:", problem, flush=True)
dog._exit(problem)
"""


def test_a_stuck_loop_exits_with_70_and_its_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 70, done.stderr[-2000:]
    assert "has not turned for" in done.stdout and "(committing)" in done.stdout
    assert "exiting to restart from the committed state" in done.stderr
    assert "Current thread" in done.stderr or "Thread 0x" in done.stderr  # the thread dump


def test_a_transactional_call_past_its_own_timeout_is_stuck() -> None:
    """librdkafka's send_offsets_to_transaction can block for minutes past its timeout after a
    broker restart (librdkafka #5456): the chaos suite waited 150 s for the no-progress rule
    each time. A call is given CALL_TIMEOUT; past it and CALL_GRACE, the worker exits."""
    import time

    from core.settings import Settings
    from streams.features.worker import FeaturesTask
    from streams.runtime.loop import TransactionalLoop
    from streams.runtime.watchdog import CALL_GRACE, CALL_TIMEOUT, Watchdog

    loop = TransactionalLoop(Settings(), FeaturesTask(Settings()), "g")
    dog = Watchdog(loop)
    now = time.monotonic()
    loop.beat = loop.last_assigned = now  # turning, and not orphaned: only the call is judged
    loop.calling = ("send_offsets_to_transaction", now - CALL_TIMEOUT)
    assert dog.check(now) == ""  # its own timeout may still answer
    loop.calling = ("send_offsets_to_transaction", now - CALL_TIMEOUT - CALL_GRACE - 1)
    problem = dog.check(now)
    assert problem.startswith("send_offsets_to_transaction has not returned for 51 s")
    loop.calling = None
    assert dog.check(now) == ""
