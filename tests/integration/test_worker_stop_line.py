"""A worker whose output is a file writes no terminal escapes, and says what it did when it stops.

The workers are run as ``pipeline run`` and the demo run them (``oddsflow worker ROLE``, no -v,
stdout and stderr to a log file), fed by the simulator, stopped with SIGTERM: each log's last line
is the worker's summary, with the counts of what it did. Staging and features run on the
transaction loop (``run_loop``: "N records consumed, ..."), the sink says what it wrote.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg

from core.offsets import admin_client, committed_offsets
from core.settings import Settings
from oddsflow.processes import start_workers, stop_workers
from producers.collect import publish_simulation
from producers.simulator import Simulator
from tests.helpers import wait_for

STOPPED = re.compile(r"(\w+) worker stopped after (\d+m\d\ds|\d+h\d\dm): (.+)$")


async def test_workers_say_what_they_did_and_write_no_escapes(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    z = s.pipeline.zones
    sim = Simulator(seed=3, games=1, books=3, ticks=10)
    acked = publish_simulation(s, sim, progress=False).stats.acked
    assert acked > 0
    roles = ("staging", "features", "sink")
    logs = {role: tmp_path / f"worker-{role}.log" for role in roles}  # start_workers' names
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        procs = start_workers(s, tmp_path, roles)  # as pipeline run and the demo start them
        try:
            await wait_for(
                lambda: conn.fetchval(f"SELECT count(*) FROM {z.staging}.odds_lines"),
                lambda n: n > 0,
                timeout=120,
                what="staged lines in Postgres",
            )
            admin, features_group = admin_client(s), f"{s.kafka.topic_prefix}oddsflow-features"
            await wait_for(  # the features worker has consumed (and committed) staged records
                lambda: asyncio.to_thread(committed_offsets, admin, features_group),
                lambda offsets: sum(offsets.values()) > 0,
                timeout=120,
                what="the features worker's commits",
            )
            raw_rows = await conn.fetchval(f"SELECT count(*) FROM {z.raw}.odds_envelopes")
        finally:
            stop_workers(procs)  # SIGTERM, then SIGKILL after a bound
        codes = {role: p.returncode for role, p in procs.items()}
    finally:
        await conn.close()
    assert codes == {"staging": 0, "features": 0, "sink": 0}, codes
    for role, log in logs.items():
        text = log.read_text(errors="replace")
        assert "\x1b[" not in text, f"{role} wrote terminal escapes to a file: {text[-500:]!r}"
    for role in roles:
        lines = logs[role].read_text().strip().splitlines()
        found = STOPPED.search(lines[-1])
        assert found and found.group(1) == role, lines[-5:]
        counted = re.match(r"(\d+) records consumed", found.group(3))
        assert counted, found.group(3)
        if role == "sink":
            assert int(counted.group(1)) >= raw_rows == acked
        else:  # staging: raw records (and its own internal topics); features: staged records
            assert int(counted.group(1)) > 0, found.group(3)
