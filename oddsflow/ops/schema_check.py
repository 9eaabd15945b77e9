"""Entry points of ``oddsflow schemas check|list`` (wired into the CLI by oddsflow.cli)."""

from __future__ import annotations

import json
import sys

from core.topics import CATALOG
from schemas.evolution import check_all, list_schemas


def cli_check() -> int:
    """Print every schema evolution problem; exit code 1 if any (for CI), else 0."""
    problems = check_all(CATALOG)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} schema problem(s)", file=sys.stderr)
        return 1
    names = {r["schema"] for r in list_schemas(CATALOG)}
    print(f"schemas ok: {len(names)} schemas, history consistent")
    return 0


def cli_list(as_json: bool = False) -> int:
    """Print one row per topic: topic, schema, released version, fingerprint."""
    rows = list_schemas(CATALOG)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width_t = max(len(r["topic"]) for r in rows)
    width_s = max(len(r["schema"]) for r in rows)
    print(f"{'topic':<{width_t}}  {'schema':<{width_s}}  version  fingerprint")
    for r in rows:
        version = "-" if r["version"] is None else ("edit" if r["version"] == 0 else r["version"])
        print(
            f"{r['topic']:<{width_t}}  {r['schema']:<{width_s}}  {version!s:<7}  {r['fingerprint']}"
        )
    return 0
