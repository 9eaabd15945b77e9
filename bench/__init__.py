"""``oddsflow bench``: throughput, latency and memory of every stage, end to end, with baselines.

Benchmark-only code, not part of the product: it lives beside the runtime packages in the source
tree and is not installed with them (pyproject's package list leaves it out). ``oddsflow bench``
imports it lazily from the source tree (:func:`oddsflow.cli` puts the tree's root on
``sys.path``); ``python -m bench [--quick]`` runs it from the root too. Entry points:
:func:`bench.command.add_bench_arguments` and :func:`bench.command.run_bench`.

Its helpers that the tests use as well (``staged_input``, ``sink_rate``, ``engine_rate``) live
here; tests may import the bench, nothing in the runtime packages does. ``bench/peers`` holds the
same stage work written with other libraries (issue 17).

The bench starts child processes with ``python -m bench.…``: :func:`child_path` (called as a
run starts) puts the source tree's root on ``PYTHONPATH`` so that they find it wherever they
are started from.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])


def child_path() -> None:
    """The source tree's root on this process's ``PYTHONPATH``, which child processes inherit
    (``core.isolation.child_env`` copies the environment)."""
    path = os.environ.get("PYTHONPATH", "")
    if ROOT not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, path) if p)
