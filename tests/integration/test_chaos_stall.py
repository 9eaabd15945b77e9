"""A worker that hangs (SIGSTOP: alive, not crashed) is seen by the health check and the lag status.

The process keeps its pid and its sockets, so nothing crashes and no supervisor restarts it; only
the monitoring can tell. Records keep arriving while it is frozen. Within ``DETECT_WITHIN``
seconds ``oddsflow pipeline health`` must exit non-zero naming the lag, and the lag monitor must
report STALL or STOP for the group; after SIGCONT both recover by themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.sink_rate import odds_line, produce_odds_lines
from core.isolation import child_env
from core.settings import Settings
from oddsflow.ops.burrow import Rules, Status
from oddsflow.ops.lag import GroupLag, LagMonitor
from tests.helpers import wait_for, workers

#: The configured detection bound: the sink's session timeout (6 s) plus a few samples.
DETECT_WITHIN = 30.0
RULES = Rules(window_seconds=60, min_observations=3, stop_after=DETECT_WITHIN / 2)


def _health(s: Settings) -> tuple[int, dict]:
    """``oddsflow pipeline health --roles sink --json`` as an operator's probe runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "oddsflow.cli", "pipeline", "health", "--roles", "sink", "--json"],
        env=child_env(s), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1])


async def test_a_hung_worker_is_detected_by_health_and_lag(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    monitor = LagMonitor(s, ["sink"], RULES, history=False)

    async def sink_lag() -> GroupLag:
        (g,) = await monitor.sample()
        return g

    with workers(s, ("sink",), tmp_path) as procs:
        assert produce_odds_lines(s, [odds_line(i) for i in range(50)]) == 50
        await wait_for(sink_lag, lambda g: g.members == 1 and g.lag == 0 and g.partitions,
                       what="sink caught up")  # fmt: skip
        code, doc = await asyncio.to_thread(_health, s)
        assert code == 0, doc["verdict"]

        pid = procs["sink"].pid
        os.killpg(pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        try:
            assert produce_odds_lines(s, [odds_line(i) for i in range(50, 80)]) == 30
            g = await wait_for(
                sink_lag, lambda g: g.status in (Status.STALL, Status.STOP),
                timeout=DETECT_WITHIN, interval=1.0, what="lag STALL/STOP",
            )  # fmt: skip
            lag_seen = time.monotonic() - hung_at
            assert g.lag == 30
            code, doc = await wait_for(
                lambda: asyncio.to_thread(_health, s), lambda r: r[0] != 0,
                timeout=DETECT_WITHIN, interval=1.0, what="health non-zero",
            )  # fmt: skip
            health_seen = time.monotonic() - hung_at
            checks = {c["name"]: c for c in doc["checks"]}
            assert not checks["lag"]["ok"], doc["verdict"]
            assert checks["lag"]["data"]["status"] in (
                {f"{s.kafka.topic_prefix}oddsflow-sink": "STALL"},
                {f"{s.kafka.topic_prefix}oddsflow-sink": "STOP"},
            )
            assert procs["sink"].poll() is None, "the worker crashed instead of hanging"
            print(f"\nhung sink seen by lag after {lag_seen:.1f}s, by health after "
                  f"{health_seen:.1f}s: {doc['verdict']}")  # fmt: skip
            assert health_seen <= DETECT_WITHIN + 15  # the probe itself takes a few seconds
        finally:
            os.killpg(pid, signal.SIGCONT)

        # It resumes by itself: everything consumed, health back to zero.
        g = await wait_for(sink_lag, lambda g: g.members == 1 and g.lag == 0, timeout=90,
                           what="sink resumed")  # fmt: skip
        assert g.status is Status.OK
        code, doc = await wait_for(
            lambda: asyncio.to_thread(_health, s), lambda r: r[0] == 0, timeout=60,
            interval=2.0, what="healthy again",
        )  # fmt: skip
        assert doc["healthy"] is True
