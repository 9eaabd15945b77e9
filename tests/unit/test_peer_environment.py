"""The Quix Streams peer's own logic, tested in the peer's environment (.venv-peer).

quixstreams pins older confluent-kafka and pydantic than the pipeline, so its tests
(bench/peers/test_quix_app.py) run with the peer's interpreter; this test runs them there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.peers.quix_staging import peer_python

ROOT = Path(__file__).resolve().parents[2]


def test_the_peer_app_logic_passes_in_its_own_environment() -> None:
    done = subprocess.run(
        [peer_python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench/peers"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
