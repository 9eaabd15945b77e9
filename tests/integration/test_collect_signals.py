"""SIGTERM mid-run: the collector flushes, and the broker holds exactly what it said was acked.

Real child processes, real broker: no acknowledged record lost, none published twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter

from core.settings import Settings
from tests.conftest import settings_env
from tests.fixtures_path import PINNACLE
from tests.helpers import wait_for
from tests.support.rawtopic import count_raw, read_raw

ACKED = re.compile(r"(\w+): (\d+) raw records acknowledged by the broker \((\d+) failed\)")


async def _terminate_mid_run(
    settings: Settings, argv: list[str], source: str, at_least: int
) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=settings_env(settings),
        start_new_session=True,
    )
    try:

        async def held() -> int:
            if proc.poll() is not None:
                raise AssertionError(f"collector ended before SIGTERM: {proc.communicate()}")
            return count_raw(settings, source)

        await wait_for(held, lambda n: n >= at_least, timeout=60, interval=0.2, what="records")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    m = ACKED.search(out.decode())
    assert m is not None, out.decode()
    assert m.group(1) == source and m.group(3) == "0"
    return int(m.group(2)), out.decode()


async def test_sigterm_during_file_replay_loses_nothing_acked(settings: Settings) -> None:
    # 514,385 s of line history at 40,000x: about 13 s, so SIGTERM lands mid-run
    argv = ["-m", "oddsflow.cli", "collect", "--source", "file", str(PINNACLE)]
    acked, out = await _terminate_mid_run(
        settings, [*argv, "--speed", "40000x", "--no-progress"], "file", at_least=20
    )
    assert "stopped early" in out
    assert 20 <= acked < 1906
    records = read_raw(settings, "file")
    assert len(records) == count_raw(settings, "file") == acked
    ids = Counter(r["event_id"] for r in records)
    assert max(ids.values()) == 1
    # what was sent is a prefix of the event-time order, not a random subset
    assert set(ids) == {f"{PINNACLE.name}:{n}" for n in _first_lines(acked)}


async def test_sigterm_during_simulation_loses_nothing_acked(settings: Settings) -> None:
    argv = ["-m", "oddsflow.cli", "collect", "--source", "simulator"]
    acked, out = await _terminate_mid_run(
        settings,
        [*argv, "--games", "100", "--books", "10", "--ticks", "600", "--seed", "3"],
        "simulator",
        at_least=2000,
    )
    assert "stopped early" in out and 2000 <= acked < 100 * 10 * 600
    records = read_raw(settings, "simulator")
    assert len(records) == count_raw(settings, "simulator") == acked
    assert max(Counter(r["event_id"] for r in records).values()) == 1


def _first_lines(n: int) -> list[int]:
    from producers.history import pinnacle_records

    return [int(r.event_id.rsplit(":", 1)[1]) for r in pinnacle_records(PINNACLE)[:n]]
