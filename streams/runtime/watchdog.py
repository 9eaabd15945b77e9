"""A worker that is alive but not working exits, so its supervisor starts one that does.

Three ways a loop can stop doing its job while the process looks healthy, each seen here:

* **Stuck**: a call no timeout covers: the loop has not turned for ``STALL_SECONDS``. One such
  call is known: librdkafka's ``send_offsets_to_transaction`` after a broker restart can block
  for minutes past its timeout (librdkafka #5456/#5511; the chaos suite met it after several
  broker restarts, and waited 150 s each time for the no-progress rule). A transactional call
  still under way ``CALL_GRACE`` after its own timeout is that: it exits then.
* **Orphaned**: after two broker restarts within one session timeout the consumer logged
  "session timed out ... rejoining group" and never rejoined; the group stayed EMPTY for minutes
  while its input waited (the loop kept turning, consuming nothing). Detected as: no assignment
  for ``ORPHAN_SECONDS`` and the group does not list this worker as a member.
* **Not progressing**: assigned, yet nothing consumed for ``NO_PROGRESS_SECONDS`` while its input
  partitions hold records beyond the group's committed offsets.

Each exits with status 70 and a thread dump in the log; the restart is exact for the same reason
a crash is (state and offsets are committed together).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.admin import admin_client
from core.kafka_config import consumer_config
from core.offsets import watermark
from streams.fatal import EX_SOFTWARE

if TYPE_CHECKING:
    from streams.runtime.loop import TransactionalLoop

log = logging.getLogger("oddsflow.runtime.watchdog")

#: The timeout each transactional call of the loop is given (librdkafka does not always honour
#: it: the watchdog exits a call that outlives it by ``CALL_GRACE``). Here, not in loop.py, so
#: that the loop imports its watchdog and not the other way round.
CALL_TIMEOUT = 30.0

#: Longer than any bounded wait of the loop, shorter than max.poll.interval (300 s).
STALL_SECONDS = 180.0
#: Longer than a rebalance after a broker restart (session timeout 10 s, a few retries).
ORPHAN_SECONDS = 45.0
#: Longer than a large restore or a long transaction retry.
NO_PROGRESS_SECONDS = 150.0
#: How long a transactional call may outlive its own timeout (``loop.CALL_TIMEOUT``).
CALL_GRACE = 20.0
CHECK_EVERY = 5.0
#: Control records (transaction markers) a partition may hold after its last record.
MARKER_SLACK = 2


class Watchdog:
    """Checks a loop every few seconds from its own thread."""

    def __init__(
        self,
        loop: TransactionalLoop,
        stall: float = STALL_SECONDS,
        orphan: float = ORPHAN_SECONDS,
        no_progress: float = NO_PROGRESS_SECONDS,
    ) -> None:
        self.loop = loop
        self.stall, self.orphan, self.no_progress = stall, orphan, no_progress
        self.reason = ""  # why the worker is not ready (for /ready), "" when all is well
        self._consumed = -1
        self._moved = time.monotonic()
        self._reader: Consumer | None = None

    def start(self, stop: threading.Event) -> None:
        self.loop.watchdog = self  # type: ignore[attr-defined]
        threading.Thread(target=self._run, args=(stop,), daemon=True, name="watchdog").start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(CHECK_EVERY):
            problem = self.check(time.monotonic())
            if problem and not stop.is_set():
                self._exit(problem)

    def check(self, now: float) -> str:
        """The reason to exit now, or "" (``reason`` says what is wrong but not yet fatal)."""
        loop = self.loop
        idle = now - loop.beat
        if idle > self.stall and not loop.restoring:
            return f"the loop has not turned for {idle:.0f} s ({loop.doing})"
        calling = loop.calling
        if calling is not None and now - calling[1] > CALL_TIMEOUT + CALL_GRACE:
            return (
                f"{calling[0]} has not returned for {now - calling[1]:.0f} s"
                f" (its timeout: {CALL_TIMEOUT:.0f} s)"
            )
        unassigned = now - loop.last_assigned
        if not loop.assigned and unassigned > self.orphan:
            member = self._is_member()
            if member is False:
                self.reason = "not a member of its consumer group"
                return (
                    f"no assignment for {unassigned:.0f} s and group {loop.group} does not"
                    f" list this worker ({loop.instance})"
                )
        lag = self._stalled_lag(now)
        if lag:
            return lag
        self.reason = "" if loop.assigned else "no partitions assigned"
        return ""

    def _is_member(self) -> bool | None:
        """Whether the group lists this worker's static instance id (None: cannot tell)."""
        loop = self.loop
        try:
            admin = admin_client(loop.settings)
            [future] = admin.describe_consumer_groups([loop.group], request_timeout=10).values()
            desc = future.result(timeout=15)
        except Exception as exc:  # the broker may be away: decide on the next check
            log.info("watchdog: cannot describe group %s: %s", loop.group, exc)
            return None
        return any(m.group_instance_id == loop.instance for m in desc.members)

    def _stalled_lag(self, now: float) -> str:
        """Nothing consumed for ``no_progress`` while the input holds records beyond the group's
        committed offsets (a commit or abort marker or two after them are not records)."""
        loop = self.loop
        consumed = loop.stats["records"]
        if not loop.assigned or loop.restoring or consumed != self._consumed:
            self._consumed = consumed
            self._moved = now
            return ""
        if now - self._moved < self.no_progress:
            return ""
        try:
            reader = self._reader
            if reader is None:
                reader = self._reader = Consumer(consumer_config(loop.settings, loop.group))
            tps = [TopicPartition(t, p) for t in sorted(loop._inputs) for p in loop.assigned]
            behind = 0
            for tp in reader.committed(tps, timeout=10):
                low, high = watermark(reader, tp)
                start = tp.offset if tp.offset >= 0 else low
                behind += max(0, high - start - MARKER_SLACK)
        except KafkaException as exc:
            log.info("watchdog: cannot read offsets of %s: %s", loop.group, exc)
            return ""
        if behind > 0:
            self.reason = f"no progress for {now - self._moved:.0f} s"
            return f"nothing consumed for {now - self._moved:.0f} s while {behind} records wait"
        self._moved = now
        return ""

    def _exit(self, problem: str) -> None:
        log.critical(
            "%s: %s; exiting to restart from the committed state", self.loop.task.name, problem
        )
        faulthandler.dump_traceback(all_threads=True)  # where it is stuck, in the log
        logging.shutdown()
        os._exit(EX_SOFTWARE)
