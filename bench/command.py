"""``oddsflow bench``: its options and its entry point, light to import.

``oddsflow/cli.py`` imports this module from the source tree when it builds its parser (so a
usage error is one line before any service is asked); the measuring itself (:mod:`bench.run`,
which imports every stage) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from core.argtypes import positive_float, positive_int
from core.settings import Settings
from oddsflow.errors import CommandError

GROUPS = (
    "ceiling", "codec", "publish", "staging", "features", "sink", "e2e", "live", "backfill",
    "growth",
)  # fmt: skip

# (quick, full) sizes: quick finishes in a few minutes, full well under 15 on two shared cores
SIZES: dict[str, tuple[int, int]] = {
    "ceiling": (20_000, 100_000),
    "codec": (50_000, 200_000),
    "publish": (10_000, 50_000),
    "staging_pure": (3_000, 10_000),
    "staging_worker": (8_000, 40_000),  # per timed run (the peer's size: compared with it)
    "peer": (8_000, 40_000),  # per run of the Quix peer (start-up ~4 s a run is not timed)
    "features_pure": (20_000, 100_000),
    "features_worker": (4_000, 15_000),
    "sink": (5_000, 20_000),
    "growth_staging": (2_000, 10_000),  # raw records through the staging worker: 16x = 160k
    "growth_features": (13, 26),  # games of a season (~1,400 lines each): 16x = 208 / 416
}


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``oddsflow bench``."""
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument(
        "--reps", type=positive_int, default=3, help="timed runs per stage (after warm-up)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    parser.add_argument(
        "--only", nargs="*", choices=GROUPS, help="run only these groups (default: all)"
    )
    parser.add_argument(
        "--rates",
        type=positive_int,
        nargs="*",
        help="end-to-end offered raw records/s (default by mode)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, help="end-to-end seconds per offered rate"
    )
    parser.add_argument(
        "--staging-memory",
        type=positive_int,
        metavar="N",
        help="also run the staging worker on N raw records and print its peak RSS (1000000: "
        "several minutes, so not part of the default run)",
    )


def require_bench_extra() -> None:
    """The benchmark's own dependencies are an extra (``oddsflow[bench]``): say how to get them
    before ten minutes of measuring end without the chart."""
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "the benchmark draws its latency chart with matplotlib, which is not installed:"
            " pip install -e '.[bench]' (or run `make bench`, which installs it)"
        )


def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Run the selected groups; print the table; write report.json and latency.png."""
    require_bench_extra()
    from bench import child_path
    from bench.run import BenchRun

    child_path()
    return BenchRun(settings, args, sizes=SIZES, groups=GROUPS).run()
