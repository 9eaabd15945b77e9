"""What a user installs: the libraries the tools are built on, and the benchmark's own extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bench import command as bench_cli
from oddsflow.errors import CommandError

ROOT = Path(__file__).resolve().parents[2]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_benchmark_only_dependencies_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    assert "matplotlib" not in runtime
    assert "matplotlib" in _names(project["optional-dependencies"]["bench"])
    assert {"prometheus-client", "rich", "tenacity"} <= runtime


def test_make_bench_installs_the_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "$(BENCH_STAMP)" in target and "$(PEER_STAMP)" in target
    stamp = makefile.split("\n$(BENCH_STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "'.[test,bench]'" in stamp
    peer = makefile.split("\n$(PEER_STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "'.[peer,test]'" in peer and "$(PEER_VENV)" in peer  # the peer's own environment


def test_bench_says_how_to_install_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bench_cli.importlib.util.find_spec
    monkeypatch.setattr(
        bench_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(CommandError, match=r"pip install -e '\.\[bench\]'.*make bench"):
        bench_cli.require_bench_extra()


def test_the_package_installs_no_benchmark_and_no_tests() -> None:
    """pyproject's package list: the runtime packages and the core, never bench/ or tests/."""
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = found["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in include} == {
        "oddsflow", "producers", "streams", "sinks", "core", "schemas",
    }  # fmt: skip


def test_bench_without_the_source_tree_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed without bench/ (pip install .): one line saying where the benchmark lives."""
    from oddsflow import cli

    monkeypatch.setattr(cli, "SOURCE_ROOT", tmp_path)
    assert cli.main(["bench", "--quick", "--only", "codec"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source checkout" in err[0] and "make bench" in err[0]
