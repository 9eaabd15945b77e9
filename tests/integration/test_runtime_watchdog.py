"""An alive worker that consumes nothing is noticed: orphaned, or not progressing while input waits.

Issue 17 saw it after two broker restarts within one session timeout: the features consumer
logged "rejoining group" and never did; the process stayed alive with no assignment and the
group EMPTY while 86,083 staged lines waited, and the stall watchdog (which only looked at the
loop turning) said nothing. Here a real worker loop runs in process against the real broker, and a
second worker of its group that the broker no longer lists (its session lost) must be named
orphaned by the watchdog (its ``check``; in a worker the problem exits with status 70 and the
supervisor starts a fresh one: tests/unit/test_features_watchdog.py; the chaos suite restarts
the broker twice within a session timeout to produce the real thing).
"""

from __future__ import annotations

import threading
import time

from core.settings import Settings
from streams.features.worker import FeaturesTask, features_group
from streams.runtime.loop import TransactionalLoop
from streams.runtime.watchdog import Watchdog
from tests.helpers import wait_for


async def test_a_worker_its_group_forgot_is_named_orphaned(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    loop = TransactionalLoop(s, FeaturesTask(s), features_group(s))
    stop = threading.Event()
    runner = threading.Thread(target=loop.run, args=(stop, False), daemon=True)
    runner.start()
    try:

        async def assigned() -> set[int]:
            return set(loop.assigned)

        await wait_for(assigned, bool, timeout=60, what="the loop's first assignment")
        assert Watchdog(loop, orphan=2.0).check(time.monotonic()) == ""  # assigned, turning
        # A second worker of the group whose session the broker dropped: alive and turning
        # (fresh heartbeat), no assignment since long ago, and the group lists only the first.
        lost = TransactionalLoop(s, FeaturesTask(s), features_group(s))
        lost.instance = f"{features_group(s)}-elsewhere-7"
        lost.beat = time.monotonic()
        lost.last_assigned = time.monotonic() - 60
        dog = Watchdog(lost, orphan=45.0)
        found = dog.check(time.monotonic())
        assert "no assignment for 60 s" in found and "does not list this worker" in found, found
        assert dog.reason == "not a member of its consumer group"
        # the same worker 10 s after losing its assignment: not yet (a rebalance takes seconds)
        lost.last_assigned = time.monotonic() - 10
        assert Watchdog(lost, orphan=45.0).check(time.monotonic()) == ""
    finally:
        stop.set()
        runner.join(timeout=30)
