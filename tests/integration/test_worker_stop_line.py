"""A worker whose output is a file writes no terminal escapes, and says what it did when it stops.

The sink and features workers are run as an operator would (``oddsflow worker ROLE``, no -v, stdout
and stderr to a log file), fed by the simulator, stopped with SIGTERM: the log's last line is the
worker's summary, with the counts of what it did. The staging worker (faust's, whose spinner hid
the cursor even in a file) is checked for escapes only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from oddsflow.settings import Settings
from producers.collect import publish_simulation
from producers.simulator import Simulator
from tests.conftest import settings_env
from tests.helpers import wait_for

STOPPED = re.compile(r"(\w+) worker stopped after (\d+m\d\ds|\d+h\d\dm): (.+)$")


@contextmanager
def worker(settings: Settings, role: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "oddsflow.cli", "worker", role],
            stdout=out, stderr=subprocess.STDOUT, env=settings_env(settings),
            start_new_session=True,
        )  # fmt: skip
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def stop(p: subprocess.Popen[bytes]) -> int:
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=30)


async def test_workers_say_what_they_did_and_write_no_escapes(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    z = s.pipeline.zones
    sim = Simulator(seed=3, games=1, books=3, ticks=10)
    acked = publish_simulation(s, sim, progress=False).stats.acked
    assert acked > 0
    logs = {role: tmp_path / f"{role}.log" for role in ("staging", "features", "sink")}
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        with (
            worker(s, "staging", logs["staging"]) as staging,
            worker(s, "features", logs["features"]) as features,
            worker(s, "sink", logs["sink"]) as sink,
        ):
            await wait_for(
                lambda: conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines"),
                lambda n: n > 0,
                timeout=120,
                what="staged lines in Postgres",
            )
            raw_rows = await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes")
            codes = {"staging": stop(staging), "features": stop(features), "sink": stop(sink)}
    finally:
        await conn.close()
    assert codes == {"staging": 0, "features": 0, "sink": 0}, codes
    for role, log in logs.items():
        text = log.read_text(errors="replace")
        assert "\x1b[" not in text, f"{role} wrote terminal escapes to a file: {text[-500:]!r}"
    for role in ("features", "sink"):
        lines = logs[role].read_text().strip().splitlines()
        found = STOPPED.search(lines[-1])
        assert found and found.group(1) == role, lines[-5:]
        if role == "sink":
            consumed = int(re.match(r"(\d+) records consumed", found.group(3)).group(1))  # type: ignore[union-attr]
            assert consumed >= raw_rows == acked
        else:
            processed = int(found.group(3).split()[0])
            assert processed > 0, found.group(3)
