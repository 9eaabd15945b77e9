"""``python -m oddsflow.bench [--quick]`` until the lead wires ``oddsflow bench``."""

from __future__ import annotations

import argparse
import sys

from core.settings import load_settings
from oddsflow.bench.cli import add_bench_arguments, run_bench


def main() -> int:
    parser = argparse.ArgumentParser(prog="oddsflow bench")
    add_bench_arguments(parser)
    return run_bench(load_settings(), parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
