"""No function longer than one can hold in one's head: 120 lines at most, walked with ``ast``
over the runtime packages, the benchmark and the test support (generated code excepted: a file
that says ``generated code`` in its first lines)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "oddsflow",
    "producers",
    "streams",
    "sinks",
    "core",
    "schemas",
    "bench",
    "tests/support",
)
LIMIT = 120


def _generated(text: str) -> bool:
    return "generated code" in "\n".join(text.splitlines()[:5]).lower()


def long_functions(limit: int = LIMIT) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if _generated(text):
                continue
            for node in ast.walk(ast.parse(text, str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > limit:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.append(f"{where} {node.name}: {lines} lines")
    return found


def test_no_function_over_120_lines() -> None:
    found = long_functions()
    assert not found, "split these:\n" + "\n".join(found)


def test_the_walk_sees_long_functions() -> None:
    assert long_functions(limit=60), "the walk found nothing: does it read the packages?"
