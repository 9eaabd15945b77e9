"""``python -m bench [--quick]`` from the source tree's root: the same as ``oddsflow bench``."""

from __future__ import annotations

import argparse
import sys

from bench.command import add_bench_arguments, run_bench
from core.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="oddsflow bench")
    add_bench_arguments(parser)
    return run_bench(load_settings(), parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
