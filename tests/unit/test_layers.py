"""The packages form one-way floors: every import points down, no circles, and the runtime never
imports the benchmark or the tests.

Floors, top to bottom (README "How data flows", docs/DESIGN.md "Layers"):

    application  oddsflow/                      CLI, worker supervisor, ops, web, demo
    stages       producers/  streams/  sinks/   none imports another stage
    core         core/                          settings, topics, Kafka helpers, domain, formats
    schemas      schemas/                       Avro schemas, codec, models

Code two stages share moves down into the core. ``bench/`` and ``tests/`` stand beside the
floors and may import any of them; nothing on a floor imports them. Imports are read with
``ast`` (those inside functions too, since a lazy import is still an arrow); those under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOOR = {"oddsflow": 3, "producers": 2, "streams": 2, "sinks": 2, "core": 1, "schemas": 0}
BESIDE = ("bench", "tests")  # may import anything; nothing on a floor imports them


def _modules() -> dict[str, Path]:
    found = {}
    for package in FLOOR:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    """(line, names it may mean) of every import that runs; ``from a import b`` may mean the
    module ``a.b`` or the name ``b`` of ``a``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (x for n in node.orelse for x in _imports(n))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, [alias.name]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.lineno, [f"{node.module}.{alias.name}", node.module]
        yield from _imports(node)


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> modules of the floors it imports; and every import that breaks a rule."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    broken = []
    for name, path in modules.items():
        here = name.split(".")[0]
        for line, candidates in _imports(ast.parse(path.read_text(), str(path))):
            target = next((c for c in candidates if c in modules), candidates[-1])
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if top in BESIDE:
                broken.append(f"{where}: the runtime imports {top}/")
            elif top not in FLOOR or top == here:
                pass
            elif FLOOR[top] > FLOOR[here]:
                broken.append(f"{where}: an upward import ({here} is below {top})")
            elif FLOOR[top] == FLOOR[here]:
                broken.append(f"{where}: one stage imports another (move the shared code to core)")
            if target in modules and target != name:
                graph[name].add(target)
    return graph, list(dict.fromkeys(broken))  # one line per import, not per name


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return found


def test_every_import_points_down() -> None:
    _, broken = _graph()
    assert not broken, "\n".join(broken)


def test_no_circular_imports() -> None:
    graph, _ = _graph()
    circles = _circles(graph)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


def test_the_rules_catch_what_they_should(tmp_path: Path) -> None:
    """The checks themselves: an upward import, a stage importing a stage, and a circle."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import core.settings\n"
        "def f():\n    from oddsflow.cli import main\n"
        "if TYPE_CHECKING:\n    from sinks.connector import X\n"
    )
    assert [names[-1] for _, names in _imports(tree)] == ["typing", "core.settings", "oddsflow.cli"]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


#: The one file name several modules share on purpose: each is a worker (a stage's, and the
#: ``oddsflow worker`` command that runs them).
SHARED_NAMES = {"__init__.py", "__main__.py", "worker.py"}


def test_one_name_per_idea() -> None:
    """No two modules of the floors or the benchmark with the same file name (five bench.py and
    two odds.py once meant different things each)."""
    seen: dict[str, list[str]] = defaultdict(list)
    for package in (*FLOOR, "bench"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name not in SHARED_NAMES:
                seen[path.name].append(str(path.relative_to(ROOT)))
    repeated = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not repeated, repeated
