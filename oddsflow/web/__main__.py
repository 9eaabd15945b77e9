"""``python -m oddsflow.web``: the same server as ``oddsflow web``, before the CLI wires it in."""

from __future__ import annotations

import argparse
import logging
import sys

from core.settings import load_settings
from oddsflow.web.app import add_web_arguments, run_web


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oddsflow web", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    add_web_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return run_web(load_settings(), args)


if __name__ == "__main__":
    sys.exit(main())
