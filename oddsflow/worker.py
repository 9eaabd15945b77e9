"""Always-on workers: ``oddsflow worker staging|features|sink|all``.

Each role has its own consumer group, so several processes of one role share partitions and take
over from each other. ``all`` supervises one process per role that ``[pipeline] mode`` runs (same
groups as running them apart) and forwards SIGTERM/SIGINT to them; a role the mode excludes is
refused (raw_only: sink; staging_only: staging and sink; full: all three), and the sink writes
only the zones of the mode.

Operating a worker: ``[worker]`` settings (config.toml, ``ODDSFLOW_WORKER__<KEY>``, or the flags
``--health-port`` and ``--log-format``; the children of ``all`` inherit them):

* ``health_port`` (default 0 = off): serve ``/live`` and ``/ready`` on
  127.0.0.1 at that port (``all`` gives staging, features and sink the port, port+1 and port+2).
  Liveness answers while the event loop turns (a heartbeat task, not just the HTTP handler, so a
  loop blocked for seconds fails it); readiness needs assigned input partitions and no rebalance
  in progress (faust), or an assignment and a reachable database (sink). Both return JSON.
* ``log_format = "json"``: one JSON object per log line (time, level, logger, message, role,
  pid), for log shippers; default is the readable text format.
* ``stop_timeout_seconds`` (default 8): SIGTERM stops consuming, finishes the batch in
  hand, commits and exits; if that has not happened within this bound the process exits with
  status 70 anyway (what is not committed is re-read by the next owner: nothing is lost).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from core.isolation import child_env
from core.probes import LIVE_STALE_SECONDS, Probe, serve_health
from core.settings import PipelineMode, Settings

ROLES = ("staging", "features", "sink")
#: What each ``[pipeline] mode`` runs (roadmap 1.1): raw_only collects into the raw zone only
#: (collectors and the sink), staging_only adds the staging worker, full adds the features.
MODE_ROLES = {
    PipelineMode.RAW_ONLY: ("sink",),
    PipelineMode.STAGING_ONLY: ("staging", "sink"),
    PipelineMode.FULL: ROLES,
}
MODE_ZONES = {
    PipelineMode.RAW_ONLY: ("raw", "operational"),
    PipelineMode.STAGING_ONLY: ("raw", "staging", "operational"),
    PipelineMode.FULL: ("raw", "staging", "curated", "operational"),
}
HEALTH_PORT_ENV = "ODDSFLOW_WORKER__HEALTH_PORT"  # [worker] health_port
LOG_FORMAT_ENV = "ODDSFLOW_WORKER__LOG_FORMAT"  # [worker] log_format
EX_STOP_TIMEOUT = 70

log = logging.getLogger("oddsflow.worker")


# -- structured logs ------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, so log shippers need no parsing rules."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "role": self.role,
            "pid": record.process,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def apply_log_format(settings: Settings, role: str) -> None:
    """Put the JSON formatter on the root handlers (after faust/mode configured them)."""
    if settings.worker.log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter(role))


# -- what a worker did --------------------------------------------------------------------------


def log_stopped(role: str, started: float, did: str) -> None:
    """The one line a worker leaves when it stops: how long it ran and what it did."""
    took = time.monotonic() - started
    minutes, seconds = divmod(int(took), 60)
    hours, minutes = divmod(minutes, 60)
    ran = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
    log.info("%s worker stopped after %s: %s", role, ran, did)


# -- bounded stop -----------------------------------------------------------------------------


_watchdog_armed = threading.Event()


def arm_stop_watchdog(settings: Settings, role: str) -> None:
    """After a stop signal, exit within ``[worker] stop_timeout_seconds`` whatever happens."""
    if _watchdog_armed.is_set():
        return
    _watchdog_armed.set()
    seconds = settings.worker.stop_timeout_seconds
    log.info("%s worker stopping (at most %.0fs)", role, seconds)

    def expire() -> None:
        log.error("%s worker did not stop within %.0fs: exiting", role, seconds)
        logging.shutdown()
        os._exit(EX_STOP_TIMEOUT)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


# -- the roles --------------------------------------------------------------------------------


def mode_roles(settings: Settings) -> tuple[str, ...]:
    """The worker roles ``[pipeline] mode`` runs, in start order."""
    return MODE_ROLES[settings.pipeline.mode]


def sink_topics(settings: Settings) -> list[str] | None:
    """Catalog topics the sink writes in this mode (None: all of them)."""
    if settings.pipeline.mode is PipelineMode.FULL:
        return None
    from core.topics import CATALOG

    zones = MODE_ZONES[settings.pipeline.mode]
    return [s.name for s in CATALOG if s.zone.value in zones]


def check_role(settings: Settings, role: str) -> None:
    """Refuse a role the configured mode does not run, saying which setting to change."""
    allowed = mode_roles(settings)
    if role in ROLES and role not in allowed:
        raise SystemExit(
            f"oddsflow: pipeline.mode is {settings.pipeline.mode.value}, which runs only "
            f"{', '.join(allowed)}: no {role} worker. Set [pipeline] mode in config.toml or "
            "ODDSFLOW_PIPELINE__MODE (staging_only adds staging, full adds features)."
        )


async def serve_role(
    settings: Settings,
    role: str,
    ready: Callable[[], tuple[bool, dict[str, Any]]],
    stop: Callable[[], None],
    work: Awaitable[None],
) -> None:
    """Await a non-faust worker's ``work`` with /live and /ready beside it; SIGTERM and SIGINT
    call ``stop`` (the worker finishes its batch, commits and returns) and arm the bounded stop."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        arm_stop_watchdog(settings, role)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    health = asyncio.create_task(serve_health(Probe(role, ready), settings.worker.health_port))
    try:
        await work
    finally:
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)


def run_sink(settings: Settings, topics: list[str] | None) -> int:
    from sinks.connector import SinkConnector

    apply_log_format(settings, "sink")
    connector = SinkConnector(settings, topics=topics or sink_topics(settings))

    def ready() -> tuple[bool, dict[str, Any]]:
        consumer = connector._consumer
        if consumer is None:
            return False, {"assigned": [], "database": "not started"}
        assigned = sorted((tp.topic, tp.partition) for tp in consumer.assignment())
        database_ok = not connector._paused  # paused = waiting for the database
        return bool(assigned) and database_ok, {
            "assigned": [f"{t}:{p}" for t, p in assigned],
            "database": "ok" if database_ok else "waiting",
        }

    async def main() -> None:
        stop = asyncio.Event()
        await serve_role(settings, "sink", ready, stop.set, connector.run(stop, purge=True))

    started = time.monotonic()
    try:
        asyncio.run(main())
    finally:
        st = connector.stats
        log_stopped(
            "sink",
            started,
            f"{st.consumed} records consumed, {sum(st.inserted.values())} rows written,"
            f" {st.existing} already there, {st.dead_lettered} dead letters, {st.batches} batches",
        )
    return 0


#: ``worker all`` restarts a worker that exits on its own, unless it does so this often: a
#: worker that cannot start (bad config, no broker) should stop the supervisor, not spin.
RESTARTS_PER_MINUTE = 5


def run_loop(settings: Settings, role: str) -> int:
    """A stream worker on the transaction loop (``streams.runtime``): the loop in a thread, the
    health endpoints on the event loop. Any error exits with status 70: the next process resumes
    from the committed state."""
    from streams.fatal import exit_for_restart
    from streams.runtime.loop import TransactionalLoop

    apply_log_format(settings, role)
    loop = TransactionalLoop(settings, *_task(settings, role))
    stop = threading.Event()

    def ready() -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - loop.beat
        watchdog = loop.watchdog
        problem = watchdog.reason if watchdog is not None else ""
        ok = bool(loop.assigned) and not loop.restoring and age < LIVE_STALE_SECONDS
        details: dict[str, Any] = {
            "assigned": loop.assignment(),
            "restoring": loop.restoring,
            "loop_age_s": round(age, 3),
        }
        if problem:
            details["problem"] = problem
        return ok and not problem, details

    def work() -> None:
        try:
            loop.run(stop)
        except Exception:
            exit_for_restart(log, role, f"the {role} worker")

    async def main() -> None:
        await serve_role(settings, role, ready, stop.set, asyncio.to_thread(work))

    started = time.monotonic()
    try:
        asyncio.run(main())
    finally:
        counters = {**loop.stats, **loop.task.counters()}
        records = counters.pop("records", 0)
        did = ", ".join([f"{records} records consumed"] + [f"{k} {v}" for k, v in counters.items()])
        log_stopped(role, started, did)
    return 0


def _task(settings: Settings, role: str) -> tuple[Any, str]:
    """The role's task and consumer group."""
    if role == "staging":
        from streams.staging.worker import StagingTask

        task = StagingTask(settings)
        return task, task.group
    from streams.features.worker import FeaturesTask, features_group

    return FeaturesTask(settings), features_group(settings)


def run_all(settings: Settings) -> int:
    """Every role of the mode in its own process, supervised: a worker that exits on its own
    (an agent error exits with status 70 so it resumes from committed state) is started again."""
    base = settings.worker.health_port
    roles = mode_roles(settings)

    def start(role: str) -> subprocess.Popen[bytes]:
        env = child_env(settings)
        i = ROLES.index(role)  # each role keeps its port whatever the mode
        env[HEALTH_PORT_ENV] = str(base + i if base else 0)
        return subprocess.Popen([sys.executable, "-m", "oddsflow.cli", "worker", role], env=env)

    procs = {role: start(role) for role in roles}
    restarts: dict[str, list[float]] = {role: [] for role in roles}
    stopping = False
    given_up: set[str] = set()

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        time.sleep(0.2)
        for role, p in list(procs.items()):
            if p.poll() is None or stopping or role in given_up or p.returncode == 0:
                continue
            now = time.monotonic()
            recent = [t for t in restarts[role] if now - t < 60.0]
            if len(recent) >= RESTARTS_PER_MINUTE:
                given_up.add(role)
                log.error(
                    "the %s worker exited %d times in a minute (last code %d); not restarting"
                    " it: see its log",
                    role, len(recent), p.returncode,
                )  # fmt: skip
                continue
            log.warning("the %s worker exited with code %d; starting it again", role, p.returncode)
            restarts[role] = [*recent, now]
            procs[role] = start(role)
        if all(p.poll() is not None for p in procs.values()):
            break
    return max(p.returncode or 0 for p in procs.values())


def run_worker(settings: Settings, role: str, topics: list[str] | None = None) -> int:
    check_role(settings, role)
    if role == "sink":
        return run_sink(settings, topics)
    if role == "all":
        return run_all(settings)
    return run_loop(settings, role)
