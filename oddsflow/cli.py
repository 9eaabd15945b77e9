"""The ``oddsflow`` command line: the roadmap's verbs over the streaming pipeline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

import asyncpg
from confluent_kafka import KafkaException

from oddsflow.settings import Settings, load_settings


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
    _print_lines(lines)
    return 0 if ok else 1


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.admin import create_topics
    from oddsflow.topics import CATALOG, topic_name

    if args.action == "create":
        from sinks.retention import align_topic_retention

        _print_lines(create_topics(settings))
        align_topic_retention(settings)
        return 0
    for s in CATALOG:
        name = topic_name(settings, s.name)
        print(f"{name:32} {s.zone.value:12} {s.schema:36} key={s.key}")
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.migrate import migrate

    applied = asyncio.run(migrate(settings))
    print("applied: " + ", ".join(applied) if applied else "database schema is up to date")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.worker import run_worker

    overrides = {
        k: v
        for k, v in (("health_port", args.health_port), ("log_format", args.log_format))
        if v is not None
    }
    if overrides:
        worker = settings.worker.model_validate({**settings.worker.model_dump(), **overrides})
        settings = settings.model_copy(update={"worker": worker})
    return run_worker(settings, args.role, topics=args.topics)


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    from producers.collect import collect

    return collect(settings, args)


def cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.cli import cli_check, cli_list

    return cli_check() if args.action == "check" else cli_list(args.json)


def cmd_data(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "promote":
        from oddsflow.ops.pipeline import run_promote

        return run_promote(settings, args)
    if args.action == "status":
        from sinks.status import data_status, format_status

        rows = data_status(settings, zone=args.zone)
        if args.json:
            import dataclasses
            import json

            print(json.dumps([dataclasses.asdict(r) for r in rows], default=str))
        else:
            print(format_status(rows))
        return 0
    from sinks.retention import purge

    deleted = purge(settings)
    for table, n in deleted.items():
        print(f"{table:40} {n:>8} rows deleted")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from oddsflow.demo import run_demo

    return run_demo(settings, seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oddsflow", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("services", help="local Kafka and Postgres (no Docker needed)")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=cmd_services)

    s = sub.add_parser("topics", help="the topic catalog")
    s.add_argument("action", choices=["create", "list"])
    s.set_defaults(func=cmd_topics)

    s = sub.add_parser("db", help="database schema")
    s.add_argument("action", choices=["migrate"])
    s.set_defaults(func=cmd_db)

    s = sub.add_parser("worker", help="run an always-on worker until stopped")
    s.add_argument("role", choices=["staging", "features", "sink", "all"])
    s.add_argument("--topics", nargs="*", help="sink only: catalog topics to write")
    s.add_argument(
        "--health-port", type=int, help="serve /live and /ready on 127.0.0.1:PORT ([worker])"
    )
    s.add_argument("--log-format", choices=["text", "json"], help="json: one object per line")
    s.set_defaults(func=cmd_worker)

    from producers.collect import add_collect_arguments

    s = sub.add_parser("collect", help="run a collector (publishes raw envelopes)")
    add_collect_arguments(s)
    s.set_defaults(func=cmd_collect)

    s = sub.add_parser("data", help="what each zone's tables hold; retention purge")
    s.add_argument("action", choices=["status", "purge", "promote"])
    s.add_argument(
        "--zone", default="all", choices=["raw", "staging", "curated", "operational", "all"]
    )
    s.add_argument("--from", dest="src", choices=["raw", "staging"], help="promote: source zone")
    s.add_argument("--to", dest="dst", choices=["staging", "curated"], help="promote: target")
    s.add_argument("--quiet", type=float, default=5.0, help="promote: seconds without movement")
    s.add_argument("--timeout", type=float, default=3600.0)
    s.add_argument("--json", action="store_true", help="status: one JSON document")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("schemas", help="topic contracts: list them, check their evolution")
    s.add_argument("action", choices=["check", "list"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_schemas)

    from oddsflow.ops import health, lag, metrics, replay, subscribe, topology

    def ops(
        sub_: argparse._SubParsersAction, name: str, add: Callable, run: Callable, h: str
    ) -> None:
        s = sub_.add_parser(name, help=h)
        add(s)
        s.set_defaults(func=lambda a, st: run(st, a))

    from oddsflow.ops import dlq

    ops(sub, "dlq", dlq.add_dlq_arguments, dlq.run_dlq,
        "dead letters: list them by reason, replay them after a fix")  # fmt: skip
    ops(sub, "lag", lag.add_lag_arguments, lag.run_lag, "consumer lag and Burrow status per group")
    ops(sub, "subscribe", subscribe.add_subscribe_arguments, subscribe.run_subscribe,
        "print the decoded records of a topic")  # fmt: skip
    ops(sub, "replay", replay.add_replay_arguments, replay.run_replay,
        "reset a group to a time to reprocess a zone (backfill)")  # fmt: skip
    ops(sub, "topology", topology.add_topology_arguments, topology.run_topology,
        "sources, agents, topics, sinks and tables, from the code's own wiring")  # fmt: skip
    ops(sub, "metrics", metrics.add_metrics_arguments, metrics.run_metrics,
        "serve Prometheus /metrics (127.0.0.1 by default)")  # fmt: skip
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
        "web view: line charts with steam/RLM/sharp markers, live; operations page")  # fmt: skip

    from oddsflow.bench.cli import add_bench_arguments, run_bench

    s = sub.add_parser("bench", help="throughput, latency and memory of every stage")
    add_bench_arguments(s)
    s.set_defaults(func=lambda a, st: run_bench(st, a))

    s = sub.add_parser("demo", help="start everything and run the pipeline on built-in data")
    s.add_argument("--seconds", type=float, default=60.0, help="how long the workers run")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings()
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return func(args, settings)
    except KeyboardInterrupt:
        return 130
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        print(
            f"oddsflow: the database has no oddsflow tables yet ({exc}); "
            "run `oddsflow db migrate` (or `make demo`)",
            file=sys.stderr,
        )
        return 1
    except (ConnectionRefusedError, asyncpg.CannotConnectNowError) as exc:
        print(
            f"oddsflow: Postgres at {settings.postgres.display_dsn} does not answer ({exc}); "
            "start it with `oddsflow services up`",
            file=sys.stderr,
        )
        return 1
    except KafkaException as exc:  # one line saying what failed, not a traceback
        err = exc.args[0] if exc.args else exc
        print(f"oddsflow: Kafka refused: {getattr(err, 'str', lambda: err)()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
