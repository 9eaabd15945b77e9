"""Every subcommand, run as a user would, with bad arguments, bad environment values, a broker on a
closed port and a database on a closed port: one line on stderr, never a traceback, the documented
exit status (README, "The command line": 2 usage, 1 runtime) and a bounded time.

Each command runs in a subprocess with a 15 s timeout (the bound is the timeout, not a timed
assert). Commands that run until stopped (workers, subscribe, web, metrics, a poller) must say in
one line that they wait for Kafka (or where they serve) and stop cleanly on SIGTERM.

``services up|down`` and ``demo`` are run with bad arguments only: their runtime path starts and
stops the machine's shared local services.
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from oddsflow.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
BOUND = 15.0  # seconds: every command ends (or says it waits) within this
CLOSED = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
OFFLINE = {
    "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS": CLOSED,
    "DATABASE_URL": f"postgresql://oddsflow@{CLOSED}/oddsflow",
}


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: int  # expected exit status
    env: dict[str, str] = field(default_factory=dict)
    #: stderr must match this (a piece of the one line), case-insensitive
    says: str = ""
    #: report commands print their verdict on stdout; stderr may then be empty
    report: bool = False

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.env.items() if k not in OFFLINE)
        return " ".join((extra, *self.argv)).strip()


def usage(*argv: str, says: str = "") -> Case:
    return Case(argv, 2, says=says)


def offline(*argv: str, says: str = "does not answer", code: int = 1) -> Case:
    return Case(argv, code, says=says)


def bad_env(var: str, value: str, *argv: str, says: str) -> Case:
    return Case(argv or ("lag",), 2, env={var: value}, says=says)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("doors")
    gz = d / "history.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"not": "a history"}\n' * 10))
    folder = d / "folder"
    folder.mkdir()
    bad_toml = d / "bad.toml"
    bad_toml.write_text("[pipeline\nmode = 'full'\n")
    return {"gz": gz, "dir": folder, "missing": d / "missing.csv", "toml": bad_toml, "tmp": d}


def once_cases(f: dict[str, Path]) -> list[Case]:
    return [
        # bad arguments: usage, exit 2, before anything runs
        usage(),
        usage("nosuch"),
        usage("services", "sideways"),
        usage("services", "up", "--bogus"),
        usage("services", "down", "extra"),
        usage("topics", "delete"),
        usage("db", "drop"),
        usage("schemas", "rewrite"),
        usage("worker", "painter"),
        usage("worker", "sink", "--health-port", "99999", says="port number"),
        usage("worker", "sink", "--log-format", "xml"),
        usage("collect"),
        usage("collect", "--source", "carrier-pigeon"),
        usage("collect", "--source", "simulator", "--games", "-2", says="positive integer"),
        usage("collect", "--source", "simulator", "--games", "0", says="positive integer"),
        usage("collect", "--source", "simulator", "--seed", "-1", says=">= 0"),
        usage("collect", "--source", "simulator", "--books", "99", says="--books"),
        usage("collect", "--source", "simulator", "--ticks", "ten"),
        usage(
            "collect",
            "--source",
            "simulator",
            "--games",
            "2",
            "--ticks",
            "20",
            "--truth",
            "F",
            says="--truth",
        ),
        usage("collect", "--source", "odds_api", "--interval", "-5s", says="interval"),
        usage("collect", "--source", "file", says="PATH"),
        usage("collect", "--source", "file", str(f["gz"]), "--speed", "fast"),
        usage("data", "explode"),
        usage("data", "status", "--zone", "attic"),
        usage("data", "promote", "--from", "raw", "--to", "curated", says="one zone at a time"),
        usage("data", "promote", "--from", "raw", "--to", "staging", "--quiet", "-1"),
        usage("dlq"),
        usage("dlq", "list", "--since", "the dawn of time", says="--since"),
        usage("dlq", "list", "-n", "-3"),
        usage("dlq", "replay", "--stage", "nowhere"),
        usage("lag", "--interval", "0"),
        usage("lag", "--count", "-1"),
        usage("subscribe"),
        usage("subscribe", "no.such.topic", says="no.such.topic"),
        usage("subscribe", "curated.steam_moves", "--max", "-1"),
        usage("replay", "--zone", "attic"),
        usage("replay", "--zone", "staging", "--from", "the dawn of time", says="--from"),
        usage("topology", "--bogus"),
        usage("metrics", "--port", "99999", says="port number"),
        usage("metrics", "--port", "http"),
        usage("pipeline"),
        usage("pipeline", "run"),
        usage("pipeline", "run", "--zone", "attic"),
        usage("pipeline", "quality", "--zone", "attic"),
        usage("pipeline", "health", "--timeout", "-1"),
        usage("pipeline", "status", "--interval", "nan"),
        usage("web", "--port", "99999", says="port number"),
        usage("web", "--ops-interval", "0"),
        usage("bench", "--reps", "0"),
        usage("bench", "--only", "everything"),
        usage("demo", "--seconds", "-1"),
        # bad environment values: usage, exit 2, naming the key
        bad_env("ODDSFLOW_PIPELINE__MODE", "sideways", says="pipeline.mode"),
        bad_env("ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS", "broker-without-port", says="bootstrap"),
        bad_env("DATABASE_URL", "notaurl", "dlq", "list", says="postgres.url"),
        bad_env("ODDSFLOW_WORKER__HEALTH_PORT", "abc", "worker", "sink", says="health_port"),
        bad_env(
            "ODDSFLOW_SIMULATOR__GAMES",
            "-1",
            "collect",
            "--source",
            "simulator",
            says="simulator.games",
        ),
        bad_env("ODDSFLOW_CONFIG", str(f["toml"]), "topics", "list", says="not valid TOML"),
        # a broker and a database that do not answer: runtime, exit 1, one line
        offline("topics", "create"),
        offline("db", "migrate"),
        offline("data", "status"),
        offline("data", "purge"),
        offline("data", "promote", "--from", "raw", "--to", "staging"),
        offline("dlq", "list"),
        offline("dlq", "replay", "--dry-run"),
        offline("lag"),
        offline("lag", "--group", "nosuch"),
        offline("replay", "--zone", "staging", "--dry-run"),
        offline("pipeline", "run", "--full"),
        offline("pipeline", "quality"),
        offline("pipeline", "status"),
        offline("collect", "--source", "simulator", "--games", "1", "--ticks", "2"),
        offline("collect", "--source", "sbd", "--once", "--base-url", f"http://{CLOSED}"),
        offline("collect", "--source", "file", str(f["missing"]), says="no such file"),
        offline("collect", "--source", "file", str(f["dir"]), says="is a directory"),
        offline("bench", "--quick", "--only", "codec"),
        Case(("pipeline", "health"), 1, says="", report=True),
        Case(("services", "status"), 1, says="", report=True),
        # no service needed: works offline
        Case(("topics", "list"), 0, report=True),
        Case(("topology",), 0, report=True),
        Case(("schemas", "list"), 0, report=True),
    ]


def _env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ODDSFLOW_") and k not in ("DATABASE_URL", "ODDS_API_KEY")
    }
    env.update(OFFLINE)
    env["ODDSFLOW_STATE_DIR"] = str(tmp / "state")  # never the machine's shared services
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _command(argv: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "oddsflow.cli", *argv]


def _run(case: Case, tmp: Path) -> subprocess.CompletedProcess[str]:
    """The command's result; a run past :data:`BOUND` is killed and reported as exit None."""
    try:
        return subprocess.run(
            _command(case.argv), env=_env(tmp, case.env), cwd=tmp, capture_output=True,
            text=True, timeout=BOUND,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return subprocess.CompletedProcess(exc.cmd, None, "", err)  # type: ignore[arg-type]


def _check(case: Case, res: subprocess.CompletedProcess[str]) -> list[str]:
    """What is wrong with one run (empty: nothing)."""
    problems = []
    err = res.stderr.strip().splitlines()
    if res.returncode is None:
        problems.append(f"still running after {BOUND:g}s")
    if "Traceback" in res.stderr or "Traceback" in res.stdout:
        problems.append("printed a traceback")
    if res.returncode != case.code:
        problems.append(f"exit {res.returncode}, expected {case.code}")
    if len(err) > 1 or (not case.report and len(err) != 1):
        problems.append(f"{len(err)} lines on stderr")
    if case.says and case.says.lower() not in res.stderr.lower():
        problems.append(f"stderr does not say {case.says!r}")
    return [f"`oddsflow {case}`: {', '.join(problems)}: {res.stderr[-300:]!r}"] if problems else []


def test_every_short_command_fails_in_one_line(files: dict[str, Path]) -> None:
    cases = once_cases(files)
    # the processes mostly wait on refused connections: run a few at once (not more: the bound
    # must hold on a loaded machine too)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: (c, _run(c, files["tmp"])), cases))
    problems = [p for case, res in results for p in _check(case, res)]
    assert not problems, "\n".join(problems)


def test_every_subcommand_is_exercised(files: dict[str, Path]) -> None:
    """A new subcommand must be added to the cases above (or to the long-running ones)."""
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._actions[-1])))
    names = set(top.choices)  # type: ignore[attr-defined]
    tried = {c.argv[0] for c in once_cases(files) if c.argv} | {c[0][0] for c in LONG_RUNNING}
    assert names <= tried, names - tried


# -- commands that run until stopped ------------------------------------------------------------


def _busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    yield from _busy_port()


#: (argv, what the one line says, where it is printed)
LONG_RUNNING: list[tuple[tuple[str, ...], str, str]] = [
    (("worker", "sink"), "waiting for Kafka at 127.0.0.1:1", "stderr"),
    (("worker", "features"), "waiting for Kafka at 127.0.0.1:1", "stderr"),
    (("subscribe", "curated.steam_moves"), "waiting for Kafka at 127.0.0.1:1", "stderr"),
    (
        ("collect", "--source", "sbd", "--interval", "1h", "--base-url", f"http://{CLOSED}"),
        "waiting for Kafka at 127.0.0.1:1",
        "stderr",
    ),
    (("metrics", "--port", "0"), "serving http://127.0.0.1:", "stderr"),
    (("web", "--port", "0"), "serving on http://127.0.0.1:", "stdout"),
]


def _collect(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


@pytest.mark.parametrize(("argv", "says", "where"), LONG_RUNNING, ids=lambda v: str(v))
def test_long_running_commands_say_they_wait_and_stop_on_sigterm(
    argv: tuple[str, ...], says: str, where: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        _command(argv), env=_env(tmp_path, {}), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
    readers = [
        threading.Thread(target=_collect, args=(proc.stdout, lines["stdout"]), daemon=True),
        threading.Thread(target=_collect, args=(proc.stderr, lines["stderr"]), daemon=True),
    ]
    for r in readers:
        r.start()
    try:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline and proc.poll() is None:
            if any(says in line for line in lines[where]):
                break
            time.sleep(0.2)
        assert any(says in line for line in lines[where]), (proc.poll(), lines)
        time.sleep(3)  # keeps waiting quietly: no more lines, no librdkafka chatter
        before_stop = list(lines["stderr"])
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=BOUND)
        for r in readers:
            r.join(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = "".join(lines["stderr"])
    assert "Traceback" not in stderr
    assert "%3|" not in stderr and "FAIL" not in stderr  # librdkafka's own lines
    # one line while it waits; at most one more when it stops (a worker says what it did)
    assert len(before_stop) == (1 if where == "stderr" else 0), before_stop
    assert len(lines["stderr"]) <= len(before_stop) + 1, stderr
    assert proc.returncode == 0, (proc.returncode, stderr)


def test_a_port_in_use_is_one_line(busy_port: int, tmp_path: Path) -> None:
    for argv in (("metrics", "--port", str(busy_port)), ("web", "--port", str(busy_port))):
        res = _run(Case(argv, 1), tmp_path)
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use" in lines[0], res.stderr
        assert "Traceback" not in res.stderr
