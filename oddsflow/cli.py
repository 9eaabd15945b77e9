"""The ``oddsflow`` command line: the roadmap's verbs over the streaming pipeline."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.argtypes import port_or_zero, positive_float
from core.settings import Settings, load_settings
from oddsflow.console import render, table
from oddsflow.errors import EX_USAGE, CommandError, UsageError
from oddsflow.jsonout import emit, iso
from oddsflow.reach import require, require_kafka, wait_for_kafka


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow import services

    if args.action == "up":
        print("Starting local services...", flush=True)
        _print_lines(services.up(settings))
        return 0
    if args.action == "down":
        _print_lines(services.down(settings))
        return 0
    ok, lines = services.status(settings)
    if args.json:
        emit({"ok": ok, "services": [_service_state(line) for line in lines]})
    else:
        _print_lines(lines)
    return 0 if ok else 1


def _service_state(line: str) -> dict[str, str | bool | None]:
    """``kafka     up    127.0.0.1:19092  (pid 5, Kafka 4.1.1)`` as fields."""
    name, state, *rest = re.split(r"\s{2,}", line.strip(), maxsplit=3)
    return {
        "service": name,
        "up": state.strip() == "up",
        "state": state.strip(),
        "where": rest[0] if rest else None,
        "detail": rest[1].strip("()") if len(rest) > 1 else None,
    }


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from core.admin import create_topics
    from core.topics import CATALOG, topic_name

    if args.action == "create":
        from sinks.retention import align_topic_retention

        done = create_topics(settings)
        align_topic_retention(settings)
        emit({"done": done}) if args.json else _print_lines(done)
        return 0
    rows = [
        {"topic": topic_name(settings, s.name), "zone": s.zone.value, "schema": s.schema,
         "key": s.key, "table": f"{s.schema_name(settings)}.{s.table}",
         "retention_ms": s.retention_ms(settings), "compacted": s.compact}
        for s in CATALOG
    ]  # fmt: skip
    if args.json:
        emit(rows)
    else:
        print(
            render(
                table(
                    ("topic", "zone", "schema", "key", "table"),
                    [(r["topic"], r["zone"], r["schema"], r["key"], r["table"]) for r in rows],
                )
            )
        )
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.migrate import migrate

    applied = asyncio.run(migrate(settings))
    if args.json:
        emit({"applied": applied})
    else:
        print("applied: " + ", ".join(applied) if applied else "database schema is up to date")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.worker import apply_log_format, check_role, run_worker

    overrides = {
        k: v
        for k, v in (("health_port", args.health_port), ("log_format", args.log_format))
        if v is not None
    }
    if overrides:
        worker = settings.worker.model_validate({**settings.worker.model_dump(), **overrides})
        settings = settings.model_copy(update={"worker": worker})
    try:
        check_role(settings, args.role)  # refused before waiting for anything
    except SystemExit as exc:
        raise UsageError(str(exc.code).removeprefix("oddsflow: ")) from None
    apply_log_format(settings, args.role)  # the waiting line too is JSON with --log-format json
    if not wait_for_kafka(settings):  # `all` waits once, before it starts the children
        return 0  # stopped before the broker answered: nothing to drain
    return run_worker(settings, args.role, topics=args.topics)


def _check_simulator_flags(args: argparse.Namespace, settings: Settings) -> None:
    """The simulator's flags against ``[simulator]``'s bounds (and ``--truth``'s needs), before
    anything is published: a bad combination is a usage error, not a traceback."""
    from pydantic import ValidationError

    from producers.collect import simulator_from

    given = {k: getattr(args, k) for k in ("seed", "games", "books", "ticks")}
    try:
        type(settings.simulator).model_validate(
            {**settings.simulator.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(f"--{err['loc'][0]}: {err['msg']}") from None
    if args.truth is None:
        return
    from producers.simulator_truth import TruthSimulator

    base = simulator_from(settings, args)
    try:
        TruthSimulator(seed=base.seed, games=base.games, books=base.books, ticks=base.ticks,
                       tick_seconds=base.tick_seconds)  # fmt: skip
    except ValueError as exc:
        need = "--games 3 or more" if "games" in str(exc) else "more --books or --ticks"
        raise UsageError(f"--truth: {exc} ({need})") from None


def _check_history_file(args: argparse.Namespace) -> None:
    """The file replay needs a PATH, read before any broker is asked: a missing, unreadable or
    corrupt file is the collector's one line (``producers.history.HistoryFileError``), whether
    Kafka answers or not. The records read are kept for the replay."""
    from producers.history import file_records

    if args.path is None:
        raise UsageError("--source file needs the PATH of a history file")
    args.records = file_records(
        args.path, getattr(args, "format", None), getattr(args, "season", None)
    )


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    from producers.collect import collect

    if args.source == "simulator":
        _check_simulator_flags(args, settings)
    elif args.source == "file":
        _check_history_file(args)
    if args.source == "simulator" or args.source == "file" or args.once:
        require_kafka(settings)
    elif not wait_for_kafka(settings):  # a poller runs until stopped: it waits for the broker
        return 0
    return collect(settings, args)


def cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.ops.schema_check import cli_check, cli_list

    return cli_check() if args.action == "check" else cli_list(args.json)


def cmd_data(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "promote":
        from oddsflow.ops.pipeline import run_promote

        return run_promote(settings, args)
    if args.action == "status":
        from sinks.data_status import data_status

        rows = data_status(settings, zone=args.zone)
        if args.json:
            emit(rows)
        else:
            columns = ("table", "rows", "newest event", "lag")
            lines = [(r.table, r.rows, iso(r.newest), r.lag) for r in rows]
            print(render(table(columns, lines, right=("rows", "lag"))))
        return 0
    from sinks.retention import purge

    deleted = purge(settings)
    if args.json:
        emit({"deleted": deleted})
        return 0
    for name, n in deleted.items():
        print(f"{name:40} {n:>8} rows deleted")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.demo import run_demo

    return run_demo(settings, seconds=args.seconds)


class Parser(argparse.ArgumentParser):
    """argparse with a usage error on one line, saying where the help is (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    try:
        return importlib.metadata.version("oddsflow")
    except importlib.metadata.PackageNotFoundError:  # a checkout run without installing
        return "unknown (not installed)"


#: The source tree's root: ``bench/`` (the benchmark) sits beside the packages there and is not
#: installed with them.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
NO_BENCH = (
    "the benchmark runs from a source checkout (bench/ beside oddsflow/), which this"
    " installation does not have: git clone the repository and run `make bench` there"
)


def _bench_command() -> Any:
    """``bench.command`` from the source tree (light: the stages are imported when it runs), or
    None where the package was installed without it."""
    if not (SOURCE_ROOT / "bench" / "command.py").is_file():
        return None
    if str(SOURCE_ROOT) not in sys.path:
        sys.path.insert(0, str(SOURCE_ROOT))
    return importlib.import_module("bench.command")


def _no_bench(*_: Any) -> int:
    raise CommandError(NO_BENCH)


def _add_bench_parser(sub: Any) -> None:
    """``oddsflow bench``: its options come from the source tree's bench/ (not installed)."""
    bench = _bench_command()
    if bench is None:  # installed without the source tree: say so before any service is asked
        s = sub.add_parser(  # any options: they are the benchmark's, which is not here
            "bench", help="(from a source checkout only)", prefix_chars="\0", add_help=False
        )
        s.add_argument("bench_args", nargs="*", help=argparse.SUPPRESS)
        s.set_defaults(func=_no_bench, check=_no_bench)
    else:
        s = sub.add_parser("bench", help="throughput, latency and memory of every stage")
        bench.add_bench_arguments(s)
        s.set_defaults(func=lambda a, st: bench.run_bench(st, a))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="oddsflow", description=__doc__)
    p.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log at INFO level and show tracebacks; -vv: DEBUG, librdkafka's lines too",
    )  # fmt: skip
    p.add_argument("--version", action="version", version=f"oddsflow {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("services", help="local Kafka and Postgres (no Docker needed)")
    s.add_argument("action", choices=["up", "down", "status"])
    s.add_argument("--json", action="store_true", help="status: one JSON document")
    s.set_defaults(func=cmd_services)

    s = sub.add_parser("topics", help="the topic catalog")
    s.add_argument("action", choices=["create", "list"])
    s.add_argument("--json", action="store_true", help="one JSON document")
    s.set_defaults(func=cmd_topics)

    s = sub.add_parser("db", help="database schema")
    s.add_argument("action", choices=["migrate"])
    s.add_argument("--json", action="store_true", help="the migrations applied, as JSON")
    s.set_defaults(func=cmd_db)

    s = sub.add_parser("worker", help="run an always-on worker until stopped")
    s.add_argument("role", choices=["staging", "features", "sink", "all"])
    s.add_argument("--topics", nargs="*", help="sink only: catalog topics to write")
    s.add_argument(
        "--health-port", type=port_or_zero,
        help="serve /live and /ready on 127.0.0.1:PORT ([worker]; 0: off)",
    )  # fmt: skip
    s.add_argument("--log-format", choices=["text", "json"], help="json: one object per line")
    s.set_defaults(func=cmd_worker, long_running=True)

    from producers.collect import HTTP_SOURCES, add_collect_arguments

    s = sub.add_parser("collect", help="run a collector (publishes raw envelopes)")
    add_collect_arguments(s)
    s.set_defaults(func=cmd_collect, long_running=lambda a: a.source in HTTP_SOURCES and not a.once)

    from oddsflow.ops.pipeline import check_promote

    s = sub.add_parser("data", help="what each zone's tables hold; retention purge")
    s.add_argument("action", choices=["status", "purge", "promote"])
    s.add_argument(
        "--zone", default="all", choices=["raw", "staging", "curated", "operational", "all"]
    )
    s.add_argument("--from", dest="src", choices=["raw", "staging"], help="promote: source zone")
    s.add_argument("--to", dest="dst", choices=["staging", "curated"], help="promote: target")
    s.add_argument(
        "--quiet", type=positive_float, default=5.0, help="promote: seconds without movement"
    )
    s.add_argument("--timeout", type=positive_float, default=3600.0)
    s.add_argument("--json", action="store_true", help="status, purge, promote: one JSON document")
    s.set_defaults(func=cmd_data, check=check_promote)

    s = sub.add_parser("schemas", help="topic contracts: list them, check their evolution")
    s.add_argument("action", choices=["check", "list"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_schemas)

    from oddsflow.ops import health, lag, metrics, replay, subscribe, topology

    def ops(
        sub_: argparse._SubParsersAction,
        name: str,
        add: Callable,
        run: Callable,
        h: str,
        long_running: bool = False,
    ) -> None:
        s = sub_.add_parser(name, help=h)
        add(s)
        s.set_defaults(func=lambda a, st: run(st, a), long_running=long_running)

    from oddsflow.ops import dlq

    ops(sub, "dlq", dlq.add_dlq_arguments, dlq.run_dlq,
        "dead letters: list them by reason, replay them after a fix")  # fmt: skip
    ops(sub, "lag", lag.add_lag_arguments, lag.run_lag, "consumer lag and Burrow status per group")
    ops(sub, "subscribe", subscribe.add_subscribe_arguments, subscribe.run_subscribe,
        "print the decoded records of a topic", long_running=True)  # fmt: skip
    ops(sub, "replay", replay.add_replay_arguments, replay.run_replay,
        "reset a group to a time to reprocess a zone (backfill)")  # fmt: skip
    ops(sub, "topology", topology.add_topology_arguments, topology.run_topology,
        "sources, agents, topics, sinks and tables, from the code's own wiring")  # fmt: skip
    ops(sub, "metrics", metrics.add_metrics_arguments, metrics.run_metrics,
        "serve Prometheus /metrics (127.0.0.1 by default)", long_running=True)  # fmt: skip
    p_pipe = sub.add_parser("pipeline", help="the roadmap's pipeline commands")
    pipe = p_pipe.add_subparsers(dest="pipeline_cmd", required=True)
    from oddsflow.ops import pipeline as pipeline_ops

    ops(pipe, "run", pipeline_ops.add_run_arguments, pipeline_ops.run_run,
        "run the zones' workers until the input is drained (one-off runs, backfills)")  # fmt: skip
    ops(pipe, "quality", pipeline_ops.add_quality_arguments, pipeline_ops.run_quality,
        "reconciliation per source: raw in = promoted + de-duplicated + dead-lettered")  # fmt: skip
    ops(pipe, "health", health.add_health_arguments, health.run_health,
        "broker, database, workers, lag, dead letters; non-zero exit when unhealthy")  # fmt: skip
    ops(pipe, "status", health.add_status_arguments, health.run_status,
        "workers, lag, throughput and last error per stage")  # fmt: skip

    from oddsflow.web import add_web_arguments, run_web

    ops(sub, "web", add_web_arguments, run_web,
        "web view: line charts with steam/RLM/sharp markers, live; operations page",
        long_running=True)  # fmt: skip

    _add_bench_parser(sub)

    s = sub.add_parser("demo", help="start everything and run the pipeline on built-in data")
    s.add_argument("--seconds", type=positive_float, default=60.0, help="how long the workers run")
    s.set_defaults(func=cmd_demo)
    return p


#: What a short command needs, asked before it starts (:mod:`oddsflow.reach`): one sentence
#: within seconds when a service does not answer. ``collect`` asks in :func:`cmd_collect`;
#: long-running commands wait instead; ``pipeline health`` and ``services status`` report it.
NEEDS: dict[str, tuple[str, ...]] = {
    "topics create": ("kafka",),
    "db migrate": ("postgres",),
    "data status": ("kafka", "postgres"),
    "data purge": ("postgres",),
    "data promote": ("kafka", "postgres"),
    "dlq list": ("kafka",),
    "dlq replay": ("kafka",),
    "lag": ("kafka",),
    "replay": ("kafka",),
    "pipeline run": ("kafka", "postgres"),
    "pipeline quality": ("kafka",),
    "pipeline status": ("kafka",),
    "bench": ("kafka", "postgres"),
}


def _command_name(args: argparse.Namespace) -> str:
    """``oddsflow dlq list``: how a message names the command that failed."""
    words = ["oddsflow", args.command]
    for attr in ("action", "dlq_cmd", "pipeline_cmd"):
        value = getattr(args, attr, None)
        if isinstance(value, str) and value.isidentifier():
            words.append(value)
    return " ".join(words)


def _configure_logging(args: argparse.Namespace) -> None:
    """WARNING by default, INFO with -v, DEBUG (librdkafka's own lines too) with -vv; commands
    that run until stopped also show the ``oddsflow.kafka`` notices ("waiting for Kafka at …"),
    workers their own (where they serve, what they did when they stop)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    long_running = getattr(args, "long_running", False)
    if callable(long_running):
        long_running = long_running(args)
    if long_running and level > logging.INFO:
        logging.getLogger("oddsflow.kafka").setLevel(logging.INFO)
    if args.command == "worker" and level > logging.INFO:  # where it serves, what it did
        logging.getLogger("oddsflow.worker").setLevel(logging.INFO)


def _system_exit_message(exc: SystemExit) -> str:
    """A ``SystemExit("…")`` raised below: its first line (a dead worker's log tail: its last)."""
    from oddsflow.processes import WorkerDied

    text = str(exc.code)
    if isinstance(exc, WorkerDied) and "\n" in text:
        head, tail = text.split("\n", 1)
        last = [line for line in tail.splitlines() if line.strip()]
        return f"{head.rstrip(':')}: {last[-1].strip()}" if last else head
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure ends as one line on stderr and exit status 2 (usage) or 1
    (runtime), see :mod:`oddsflow.errors`; ``-v`` adds the traceback."""
    from core.settings import SettingsError
    from oddsflow.errors import EX_BROKEN_PIPE, EX_INTERRUPTED, explain, one_line

    args = build_parser().parse_args(argv)
    _configure_logging(args)
    name = _command_name(args)
    settings: Settings | None = None
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        settings = load_settings()
        check = getattr(args, "check", None)
        if check is not None:  # usage errors the parser cannot see, before any service is asked
            check(args)
        require(settings, NEEDS.get(name.removeprefix("oddsflow "), ()))
        return func(args, settings)
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except BrokenPipeError:  # `oddsflow … | head`: the reader is gone, nothing to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_BROKEN_PIPE
    except SettingsError as exc:
        message, code = explain(exc, settings)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise
        message, code = _system_exit_message(exc), 1
    except Exception as exc:
        message, code = explain(exc, settings)
        if args.verbose:
            logging.getLogger("oddsflow").exception("%s failed", name)
    message = one_line(message)
    if not message.startswith("oddsflow"):
        message = f"{name}: {message}"
    print(message, file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
