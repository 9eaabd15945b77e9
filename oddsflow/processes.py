"""Worker processes run by the demo, `pipeline run`, the benchmark and the tests.

Each is a real ``oddsflow worker ROLE`` process with exactly the caller's settings (through
:func:`core.isolation.child_env`), its own session (so a kill reaches its children) and its
own log file; stopping is SIGTERM, then SIGKILL after a bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.isolation import child_env
from core.settings import Settings
from oddsflow.services.process import tail
from oddsflow.worker import mode_roles

Procs = dict[str, subprocess.Popen[bytes]]


def _demo_log_name(role: str) -> str:
    return f"worker-{role}.log"


def start_workers(
    settings: Settings,
    log_dir: Path,
    roles: tuple[str, ...] | None = None,
    log_name: Callable[[str], str] = _demo_log_name,
    verbose: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Procs:
    """One process per role (default: the roles ``[pipeline] mode`` runs)."""
    roles = mode_roles(settings) if roles is None else roles
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**child_env(settings), **(extra_env or {})}
    flags = ["-v"] if verbose else []
    procs: Procs = {}
    for role in roles:
        with open(log_dir / log_name(role), "wb") as log:
            procs[role] = subprocess.Popen(
                [sys.executable, "-m", "oddsflow.cli", *flags, "worker", role],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )  # fmt: skip
    return procs


def stop_workers(procs: Procs, timeout: float = 20.0) -> None:
    """SIGTERM every worker; SIGKILL the process group of any still running after ``timeout``."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs.values():
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


class WorkerDied(SystemExit):
    """A worker exited on its own: the message names it and shows the end of its log."""


def check_workers(
    procs: Procs, log_dir: Path, log_name: Callable[[str], str] = _demo_log_name
) -> None:
    for role, p in procs.items():
        if p.poll() is not None:
            log = log_dir / log_name(role)
            raise WorkerDied(
                f"oddsflow: the {role} worker exited with code {p.returncode}; its log "
                f"({log}) ends with:\n{tail(log, 25)}"
            )


@contextmanager
def running_workers(
    settings: Settings,
    roles: tuple[str, ...],
    log_dir: Path,
    log_name: Callable[[str], str] = _demo_log_name,
    verbose: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Procs]:
    """Workers for the duration of a ``with`` block; always stopped afterwards."""
    procs: Procs = {}
    try:
        procs = start_workers(settings, log_dir, roles, log_name, verbose, extra_env)
        yield procs
    finally:
        stop_workers(procs)
