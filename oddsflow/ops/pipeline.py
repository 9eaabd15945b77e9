"""``oddsflow pipeline run``: the roadmap's one-off runs, mapped onto the stream.

A zone is promoted by the workers that write it: ``raw`` by the sink (raw topics → raw_data),
``staging`` by the staging worker and the sink, ``curated`` by the feature worker and the sink,
``--full`` by all three. The run starts those workers, waits until the pipeline is quiet (every
involved group has committed offsets and nothing moved — end offsets nor commits — for a few
seconds: with transactional producers upstream a partition's last offset can be a marker no one
consumes, so "lag == 0" alone would never be reached), stops them with SIGTERM and prints what
each table gained. ``pipeline.mode`` limits what ``--full`` runs (raw_only, staging_only).

Quality gates (``[pipeline.processing] quality_gates``, roadmap 2.1): on, a run that builds both
staging and curated builds staging first, prints each source's pass rate from the staging
worker's quality reports of this run and, if one is below ``[pipeline] quality_threshold``, stops
there with exit status 1 (the curated zone is not built); off, every worker runs at once and the
pass rates are only printed.

``--json``: the same report as one document on stdout (what each table gained, the pass rates,
the verdict, ISO-8601 UTC times); the lines that say what the run is doing go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import asyncpg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core.argtypes import positive_float
from core.offsets import KafkaUnavailable, admin_client, committed_offsets, end_offsets, retried
from core.settings import Settings
from core.topics import CATALOG, Zone, topic_name
from oddsflow.errors import CommandError, UsageError, kafka_reason
from oddsflow.processes import WorkerDied
from oddsflow.status import count_rows
from oddsflow.worker import MODE_ZONES as WORKER_MODE_ZONES
from schemas.codec import default_codec

PROMOTIONS = (("raw", "staging"), ("staging", "curated"))
#: How long a run waits for a broker that stopped answering before it gives up (resumable).
BROKER_PATIENCE = 120.0
ZONE_ROLES = {"raw": ("sink",), "staging": ("staging", "sink"), "curated": ("features", "sink")}
MODE_ZONES = {
    mode: tuple(z for z in zones if z != "operational") for mode, zones in WORKER_MODE_ZONES.items()
}


def roles_for(settings: Settings, zone: str | None) -> tuple[str, ...]:
    """Worker roles a run needs, in start order; refuses zones the configured mode excludes."""
    allowed = MODE_ZONES[settings.pipeline.mode]
    zones = allowed if zone in (None, "full") else (zone,)
    for z in zones:
        if z not in allowed:
            raise UsageError(
                f"pipeline.mode is {settings.pipeline.mode.value}: the {z} zone is not "
                "run; change [pipeline] mode in config.toml or ODDSFLOW_PIPELINE__MODE"
            )
    roles: list[str] = []
    for z in zones:
        for r in ZONE_ROLES[z]:
            if r not in roles:
                roles.append(r)
    return tuple(sorted(roles, key=("staging", "features", "sink").index))


def _inputs(settings: Settings, role: str) -> list[str]:
    if role == "staging":
        zones = {Zone.RAW}
    elif role == "features":
        zones = {Zone.STAGING}
    else:
        zones = {Zone.RAW, Zone.STAGING, Zone.CURATED, Zone.OPERATIONAL}
    return [topic_name(settings, s.name) for s in CATALOG if s.zone in zones]


def _metadata(admin: AdminClient) -> Any:
    try:
        return admin.list_topics(timeout=10)
    except KafkaException as exc:
        reason, unreachable = kafka_reason(exc)  # no answer: already waited 10 s, not retried
        raise KafkaUnavailable(f"listing topics: {reason}", transient=not unreachable) from None


def _snapshot(settings: Settings, roles: tuple[str, ...]) -> tuple[dict, bool]:
    """(offsets of every involved group and input partition, every input with data committed)."""
    admin = admin_client(settings)
    md = retried(lambda: _metadata(admin))
    state: dict = {}
    complete = True
    for role in roles:
        group = f"{settings.kafka.topic_prefix}oddsflow-{role}"
        tps = [
            (t, p)
            for t in _inputs(settings, role)
            if t in md.topics
            for p in md.topics[t].partitions
        ]
        ends = end_offsets(admin, tps)
        commits = committed_offsets(admin, group)
        for tp, end in ends.items():
            if end > 0 and tp not in commits:
                complete = False
        state[role] = (ends, {tp: commits.get(tp) for tp in tps})
    return state, complete


def wait_until_quiet(
    settings: Settings, roles: tuple[str, ...], quiet: float, timeout: float, check: object
) -> float:
    """Seconds until nothing moved for ``quiet`` seconds; ``check()`` raises if a worker died.

    A broker that stops answering is waited for (the workers wait too) for up to
    :data:`BROKER_PATIENCE` seconds, said once; after that :class:`KafkaUnavailable` ends the run.
    """
    started = last_change = time.monotonic()
    last = None
    failing_since: float | None = None
    while True:
        check()  # type: ignore[operator]
        try:
            state, complete = _snapshot(settings, roles)
        except KafkaUnavailable as exc:
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
                print(
                    f"pipeline run: the broker did not answer ({exc}); the workers keep going,"
                    f" waiting up to {BROKER_PATIENCE:.0f}s for it",
                    file=sys.stderr,
                    flush=True,
                )
            elif now - failing_since > BROKER_PATIENCE:
                raise
            time.sleep(2.0)
            continue
        if failing_since is not None:
            print("pipeline run: the broker answers again", file=sys.stderr, flush=True)
            failing_since = None
        now = time.monotonic()
        if state != last or not complete:
            last, last_change = state, now
        elif now - last_change >= quiet:
            return now - started
        if now - started > timeout:
            raise CommandError(f"the pipeline did not drain within {timeout:.0f}s")
        time.sleep(1.0)


def quality_since(settings: Settings, since: datetime) -> dict[str, tuple[int, int]]:
    """Per source, (records in, records passed) of the staging reports emitted since ``since``.

    The latest report per (source, minute) holds that minute's totals (operational.quality).
    """
    from core.reader import read_topic

    decode = default_codec().decode
    latest: dict[tuple[str, datetime], dict] = {}
    for msg in read_topic(settings, topic_name(settings, "operational.quality")):
        r = decode(msg.value() or b"")
        if r["stage"] == "staging" and r["emitted_at"] >= since:
            latest[(r["source"], r["window_start"])] = r
    out: dict[str, tuple[int, int]] = {}
    for (source, _w), r in sorted(latest.items()):
        n, passed = out.get(source, (0, 0))
        out[source] = (n + r["records_in"], passed + r["records_in"] - r["dead_lettered"])
    return out


def quality_gate(
    settings: Settings, since: datetime, out: IO[str] | None = None
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Print (to ``out``, default stdout) the staging pass rate per source since ``since``;
    (False if one is below threshold, per source its records in, passed, rate and verdict)."""
    threshold = settings.pipeline.quality_threshold
    rows = quality_since(settings, since)
    gates = "on" if settings.pipeline.processing.quality_gates else "off"
    print(
        f"quality (staging, [pipeline] quality_threshold {threshold:.0%}, gates {gates}):", file=out
    )
    report: dict[str, dict[str, Any]] = {}
    for source, (n, passed) in rows.items():
        rate = passed / n if n else 1.0
        mark = "ok" if rate >= threshold else "BELOW"
        print(f"  {source:15} {passed:>8} of {n:>8} records passed ({rate:.1%}) {mark}", file=out)
        report[source] = {"records_in": n, "passed": passed, "pass_rate": rate, "ok": mark == "ok"}
    if not rows:
        print("  no records staged in this run", file=out)
    return all(r["ok"] for r in report.values()), report


def _run(
    settings: Settings, roles: tuple[str, ...], procs: dict, quiet: float, timeout: float
) -> float:
    from oddsflow.processes import check_workers

    log_dir = Path(settings.state_dir / "logs")
    if "staging" in roles:  # the last quality report is in once a report interval passed quietly
        quiet = max(quiet, settings.pipeline.quality_report_seconds + 2)
    return wait_until_quiet(settings, roles, quiet, timeout, lambda: check_workers(procs, log_dir))


def run_zone(
    settings: Settings,
    zone: str | None,
    quiet: float = 5.0,
    timeout: float = 3600,
    again: str = "oddsflow pipeline run --full",
    json: bool = False,
) -> int:
    """Run the zone's workers until drained. With quality gates on, a run that builds both
    staging and curated builds staging first and stops if its pass rate is below the threshold
    (roadmap 2.1); with them off, every worker runs at once and the quality is only reported.

    A run that cannot go on (the broker gone for good, a worker that died, the time is up) stops
    the workers — they commit what they did — and says to run ``again`` to resume from there.
    ``json``: the report is one JSON document on stdout, what the run is doing goes to stderr."""
    try:
        return _run_zone(settings, zone, quiet, timeout, json)
    except (KafkaUnavailable, CommandError, WorkerDied) as exc:
        if isinstance(exc, WorkerDied):
            what = _system_exit_text(exc)
        elif isinstance(exc, KafkaUnavailable):
            what = f"Kafka at {settings.kafka.bootstrap_servers}: {exc}"
        else:
            what = str(exc)
        raise CommandError(
            f"{what}. The workers were stopped after committing what they processed: run"
            f" `{again}` to resume from there"
        ) from None


def _ending_input(settings: Settings, quiet: float) -> Settings:
    """The workers' settings for a run that ends when drained: the feature worker does its
    end-of-input work (the vectors of games whose lines stop before first pitch, as a history
    file's do) within the quiet period, so the run sees it and waits for the sink, instead of
    stopping before ``idle_flush_seconds`` (30 s) of quiet released it."""
    idle = min(settings.features.idle_flush_seconds, max(1.0, quiet / 2))
    features = settings.features.model_copy(update={"idle_flush_seconds": idle})
    return settings.model_copy(update={"features": features})


def _system_exit_text(exc: SystemExit) -> str:
    """A dead worker's message without its log tail (the log file is named in it)."""
    return str(exc.code).split("\n", 1)[0].rstrip(":").removeprefix("oddsflow: ")


def _run_zone(
    settings: Settings, zone: str | None, quiet: float, timeout: float, json: bool = False
) -> int:
    from oddsflow.processes import start_workers, stop_workers

    say = sys.stderr if json else sys.stdout  # with --json, stdout is the document alone
    roles = roles_for(settings, zone)
    gates = settings.pipeline.processing.quality_gates
    settings = _ending_input(settings, quiet)
    phases = [roles]
    if gates and "staging" in roles and "features" in roles:
        phases = [tuple(r for r in roles if r != "features"), roles]
    before = asyncio.run(count_rows(settings))
    started = datetime.now(UTC)
    log_dir = settings.state_dir / "logs"
    procs: dict = {}
    passed = True
    quality: dict[str, dict[str, Any]] = {}
    took = 0.0
    try:
        for i, phase in enumerate(phases):
            new = tuple(r for r in phase if r not in procs)
            print(
                f"pipeline run: starting {', '.join(new)} (logs in {log_dir})", file=say, flush=True
            )
            procs.update(start_workers(settings, Path(log_dir), roles=new))
            took += _run(settings, phase, procs, quiet, timeout)
            if "staging" in phase and i == 0:
                passed, quality = quality_gate(settings, started, say)
                if not passed and gates:
                    break
    finally:
        stop_workers(procs)
    after = asyncio.run(count_rows(settings))
    added = {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)}
    if json:
        from oddsflow.jsonout import emit

        emit(
            {
                "zone": zone or "full",
                "roles": list(roles),
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "drained_seconds": round(took, 1),
                "rows_added": added,
                "quality": quality,
                "quality_gates": gates,
                "passed": passed,  # every source at or above the threshold
            }
        )
    else:
        print(f"drained in {took:.0f}s; rows added per table:")
        for table, n in added.items():
            print(f"  {table:40} +{n}")
    if not passed and gates:
        skipped = " the curated zone was not built;" if len(phases) > 1 else ""
        print(
            f"oddsflow: quality gate failed: a source's staging pass rate is below"
            f" [pipeline] quality_threshold ({settings.pipeline.quality_threshold:.0%});{skipped}"
            " see what was refused with `oddsflow dlq list`, fix it and `oddsflow dlq replay`,"
            " or run without gates: [pipeline.processing] quality_gates = false",
            file=sys.stderr,
        )
        return 1
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--zone", choices=("raw", "staging", "curated"))
    g.add_argument("--full", action="store_true", help="every zone the pipeline.mode allows")
    parser.add_argument(
        "--quiet", type=positive_float, default=5.0, help="seconds without movement"
    )
    parser.add_argument("--timeout", type=positive_float, default=3600.0)
    parser.add_argument(
        "--json", action="store_true", help="the report (rows added per table, pass rates) as JSON"
    )


def run_run(settings: Settings, args: argparse.Namespace) -> int:
    again = "oddsflow pipeline run " + ("--full" if args.full else f"--zone {args.zone}")
    zone = None if args.full else args.zone
    return run_zone(settings, zone, args.quiet, args.timeout, again, getattr(args, "json", False))


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="src", required=True, choices=("raw", "staging"))
    parser.add_argument("--to", dest="dst", required=True, choices=("staging", "curated"))
    parser.add_argument("--quiet", type=positive_float, default=5.0)
    parser.add_argument("--timeout", type=positive_float, default=3600.0)


def check_promote(args: argparse.Namespace) -> None:
    """A promotion is one zone: raw → staging or staging → curated (a usage error otherwise)."""
    if getattr(args, "action", "promote") == "promote" and (args.src, args.dst) not in PROMOTIONS:
        raise UsageError("promote one zone at a time: --from raw --to staging, or --from staging"
                         " --to curated")  # fmt: skip


def run_promote(settings: Settings, args: argparse.Namespace) -> int:
    """``data promote --from raw --to staging``: the roadmap's promotion is one zone's run."""
    check_promote(args)
    again = f"oddsflow data promote --from {args.src} --to {args.dst}"
    return run_zone(
        settings, args.dst, args.quiet, args.timeout, again, getattr(args, "json", False)
    )


def add_quality_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", default="staging", choices=("staging", "all"))
    parser.add_argument("--json", action="store_true")


async def latest_pass_rates(settings: Settings) -> list[dict]:
    """Per source, the latest minute's staging report and the last hour's pass rate."""
    ops = settings.pipeline.zones.operational
    conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    try:
        rows = await conn.fetch(
            f"""
            SELECT source, max(window_start) AS window_start,
                   (array_agg(records_in ORDER BY window_start DESC))[1] AS records_in,
                   (array_agg(pass_rate ORDER BY window_start DESC))[1] AS pass_rate,
                   sum(records_in - dead_lettered) FILTER (WHERE window_start > now() - interval
                       '1 hour')::float8 / nullif(sum(records_in) FILTER (WHERE window_start
                       > now() - interval '1 hour'), 0) AS hour_pass_rate
            FROM {ops}.quality WHERE stage = 'staging' GROUP BY source ORDER BY source
            """
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _unbalanced(rows: list[dict]) -> str | None:
    """Why the reconciliation does not balance, in one sentence (None when it does)."""
    bad = [r for r in rows if not r["balanced"]]
    if not bad:
        return None
    parts = []
    for r in bad:
        counts = (("raw_pending", "pending"), ("raw_unexplained", "unexplained"))
        what = [f"{r[k]} {label}" for k, label in counts if r[k]]
        parts.append(f"{r['source']} ({', '.join(what) or 'parts do not add up'})")
    return (
        f"not balanced: {'; '.join(parts)}. Pending records wait for the staging worker's"
        " decision; unexplained ones have no trace on its outputs or dead letters yet. Is the"
        " staging worker running and caught up? (`oddsflow pipeline status`; ask again once"
        " its lag is 0)"
    )


def run_quality(settings: Settings, args: argparse.Namespace) -> int:
    """Per source, raw in = promoted + unchanged + late + dead-lettered + empty (exit 1 when
    unbalanced, saying why), the replays of dead letters among raw in, and the latest pass rates
    from operational.quality. Reading every staging topic takes a while: a terminal shows
    progress."""
    from oddsflow.console import reading_progress, render, table
    from oddsflow.jsonout import emit
    from oddsflow.ops.dlq import replays_by_source
    from streams.staging.reconcile import reconcile

    with reading_progress("reconciling staging") as progress:
        rows = [r for r in reconcile(settings, "staging") if r["raw_in"]]
        progress.step("counting dead-letter replays")
        replays = replays_by_source(settings)
        progress.step("reading pass rates (operational.quality)")
        try:
            rates = asyncio.run(latest_pass_rates(settings))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            rates = []
            why = f"operational.quality not readable ({exc}): run the sink and db migrate"
        else:
            why = "no quality reports yet (the staging worker publishes them; the sink loads them)"
    unbalanced = _unbalanced(rows)
    if args.json:
        by_source = {q["source"]: q for q in rates}
        for r in rows:
            r["replays"] = replays.get(str(r["source"]), 0)
            q = by_source.get(str(r["source"]), {})
            r["latest_minute"] = q.get("window_start")
            r["latest_pass_rate"] = q.get("pass_rate")
            r["last_hour_pass_rate"] = q.get("hour_pass_rate")
        emit(rows)
    else:
        columns = ("source", "raw in", "promoted", "unchanged", "late", "dead", "empty",
                   "pending", "unexpl.", "replays", "|", "parts", "promoted", "unchanged",
                   "late", "dead", "balanced")  # fmt: skip
        print(
            render(
                table(
                    columns,
                    [
                        (
                            r["source"],
                            r["raw_in"],
                            r["raw_promoted"],
                            r["raw_unchanged"],
                            r["raw_late"],
                            r["raw_dead_lettered"],
                            r["raw_empty"],
                            r["raw_pending"],
                            r["raw_unexplained"],
                            replays.get(str(r["source"]), 0),
                            "|",
                            r["parts"],
                            r["promoted"],
                            r["unchanged"],
                            r["late"],
                            r["dead_lettered"],
                            r["balanced"],
                        )
                        for r in rows
                    ],
                    right=[c for c in columns if c not in ("source", "|", "balanced")],
                )
            )
        )
        if not rows:
            print("no raw records yet")
        if replays:
            print("(raw in counts dead-letter replays as deliveries of their own: distinct records"
                  " = raw in - replays)")  # fmt: skip
        threshold = settings.pipeline.quality_threshold
        print(f"\npass rate per source (operational.quality; gate {threshold:.0%}, KPI > 95%):")
        for q in rates:
            print(
                f"  {q['source']:15} latest minute {q['window_start']:%Y-%m-%d %H:%M}"
                f" {_pct(q['pass_rate']):>7} of {q['records_in']:>7} records"
                f" | last hour {_pct(q['hour_pass_rate']):>7}"
            )
        if not rates:
            print(f"  {why}")
    if unbalanced:
        print(f"oddsflow pipeline quality: {unbalanced}", file=sys.stderr)
        return 1
    return 0
