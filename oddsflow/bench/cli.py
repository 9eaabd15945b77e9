"""``oddsflow bench``: every stage, end to end and growth, into a table, JSON and a chart.

Wire-up for ``oddsflow/cli.py``::

    s = sub.add_parser("bench", help="benchmark every stage and end to end")
    add_bench_arguments(s)
    s.set_defaults(func=lambda args, settings: run_bench(settings, args))
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.argtypes import positive_float, positive_int
from core.settings import Settings
from oddsflow.bench import stages
from oddsflow.bench.harness import Measurement, StageStats, repeat
from oddsflow.bench.report import (
    e2e_table,
    latency_chart,
    machine_facts,
    stage_table,
    write_json,
)
from oddsflow.errors import CommandError

GROUPS = (
    "ceiling", "codec", "publish", "staging", "features", "sink", "e2e", "live", "backfill",
    "growth",
)  # fmt: skip

# (quick, full) sizes: quick finishes in a few minutes, full well under 15 on two shared cores
SIZES: dict[str, tuple[int, int]] = {
    "ceiling": (20_000, 100_000),
    "codec": (50_000, 200_000),
    "publish": (10_000, 50_000),
    "staging_pure": (3_000, 10_000),
    "staging_worker": (8_000, 40_000),  # per timed run (the peer's size: compared with it)
    "peer": (8_000, 40_000),  # per run of the Quix peer (start-up ~4 s a run is not timed)
    "features_pure": (20_000, 100_000),
    "features_worker": (4_000, 15_000),
    "sink": (5_000, 20_000),
    "growth_staging": (2_000, 10_000),  # raw records through the staging worker: 16x = 160k
    "growth_features": (13, 26),  # games of a season (~1,400 lines each): 16x = 208 / 416
}


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``oddsflow bench``."""
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument(
        "--reps", type=positive_int, default=3, help="timed runs per stage (after warm-up)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    parser.add_argument(
        "--only", nargs="*", choices=GROUPS, help="run only these groups (default: all)"
    )
    parser.add_argument(
        "--rates",
        type=positive_int,
        nargs="*",
        help="end-to-end offered raw records/s (default by mode)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, help="end-to-end seconds per offered rate"
    )
    parser.add_argument(
        "--staging-memory",
        type=positive_int,
        metavar="N",
        help="also run the staging worker on N raw records and print its peak RSS (1000000: "
        "several minutes, so not part of the default run)",
    )


def _traceback_if_verbose() -> None:
    """A failed stage is one FAILED line; its traceback with ``oddsflow -v bench``."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        traceback.print_exc()


def require_bench_extra() -> None:
    """The benchmark's own dependencies are an extra (``oddsflow[bench]``): say how to get them
    before ten minutes of measuring end without the chart."""
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "the benchmark draws its latency chart with matplotlib, which is not installed:"
            " pip install -e '.[bench]' (or run `make bench`, which installs it)"
        )


def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Run the selected groups; print the table; write report.json and latency.png."""
    require_bench_extra()
    quick = bool(args.quick)
    size = lambda key: SIZES[key][0 if quick else 1]  # noqa: E731
    reps = max(1, args.reps)
    groups = set(args.only or GROUPS)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / "logs"
    began = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - began:6.0f}s] {msg}", flush=True)

    facts = machine_facts(settings)
    log(
        f"oddsflow bench ({'quick' if quick else 'full'}): {facts['cpu_count']} cores, Python "
        f"{facts['python']}, Kafka {facts['kafka_broker']}, Postgres {facts['postgres']}"
    )
    results: list[StageStats] = []
    extra: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def stage(group: str, title: str, fn: Callable[[], dict[str, StageStats]]) -> None:
        if group not in groups:
            return
        log(f"{title}...")
        try:
            found = fn()
            results.extend(found.values())
        except Exception as exc:  # one broken stage must not lose the others' figures
            errors[title] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors[title]}")
            _traceback_if_verbose()

    kw: dict[str, Any] = {"reps": reps, "log": log}
    stage(
        "ceiling",
        "1. ceiling: plain confluent-kafka produce/consume",
        lambda: repeat(stages.ceiling, settings, size("ceiling"), **kw),
    )
    stage(
        "codec",
        "2. codec: OddsLine encode/decode (one core)",
        lambda: repeat(stages.codec, size("codec"), **kw),
    )
    stage(
        "publish",
        "3. collector publish",
        lambda: repeat(stages.publish, settings, size("publish"), **kw),
    )

    def peer_quix() -> dict[str, StageStats]:
        runs = stages.peer_quix(settings, size("peer"), reps, log_dir, log)
        by_stage: dict[str, list[Measurement]] = {}
        for m in runs:
            by_stage.setdefault(m.stage, []).append(m)
        notes = {  # issue 17: oddsflow's staging >= 1.5x the peer's records/s, <= 0.6x its CPU
            "peer: Quix Streams staging app": "the staging work as a Quix Streams app "
            "(bench/peers): oddsflow's staging worker is compared with this",
            "peer: Quix Streams pass-through": "Quix alone: consume and forward, no processing",
        }
        return {k: StageStats(k, v, notes.get(k, "")) for k, v in by_stage.items()}

    stage("staging", "4. peer: Quix Streams staging app over Kafka (bench/peers)", peer_quix)
    stage(
        "staging",
        "4a. staging processor (pure, one core)",
        lambda: repeat(stages.staging_pure, size("staging_pure"), **kw),
    )

    def staging_worker() -> dict[str, StageStats]:
        n = size("staging_worker")
        base = stages.staging_worker_baseline(settings, max(2_000, n // 5), reps, log_dir)
        runs = stages.staging_worker(settings, n, reps, log_dir)
        b, f = StageStats(base[0].stage, base), StageStats(runs[0].stage, runs)
        ratio = f.rate.median / b.rate.median if b.rate.median else float("nan")
        cpu = b.cpu_per_1k.median / f.cpu_per_1k.median if f.cpu_per_1k.median else float("nan")
        note = f"vs the faust per-event baseline: {ratio:.1f}x records/s, {cpu:.1f}x less CPU"
        peer = next((r for r in results if r.stage == "peer: Quix Streams staging app"), None)
        if peer is not None and peer.rate.median and f.cpu_per_1k.median:
            note += (  # issue 17: >= 1.5x the peer's records/s, <= 0.6x its CPU per record
                f"; vs the Quix peer: {f.rate.median / peer.rate.median:.2f}x records/s,"
                f" {f.cpu_per_1k.median / peer.cpu_per_1k.median:.2f}x its CPU per record"
            )
        return {b.stage: b, f.stage: StageStats(f.stage, runs, note)}

    stage("staging", "4b. staging worker over Kafka", staging_worker)

    def faust_ceiling() -> dict[str, StageStats]:
        n = size("staging_worker")
        runs = stages.faust_ceiling(settings, n, reps, log_dir)
        note = "faust alone: no processing, one send per record (what capped the faust worker)"
        tuned = stages.faust_ceiling(settings, n, reps, log_dir, tuned=True)
        return {
            runs[0].stage: StageStats(runs[0].stage, runs, note),
            tuned[0].stage: StageStats(tuned[0].stage, tuned, "faust's best options"),
        }

    stage("staging", "4c. faust ceiling: pass-through agent over Kafka", faust_ceiling)

    if args.staging_memory:
        n_mem = args.staging_memory
        stage(
            "staging",
            f"4e. staging worker peak RSS after {n_mem:,} raw records",
            lambda: {
                m.stage: StageStats(m.stage, [m])
                for m in stages.staging_worker_memory(settings, n_mem, log_dir)
            },
        )
    stage(
        "features",
        "5a. feature engine (pure, one core)",
        lambda: repeat(stages.features_pure, size("features_pure"), **kw),
    )

    def features_worker() -> dict[str, StageStats]:
        runs = stages.features_worker(settings, size("features_worker"), reps, log_dir)
        return {runs[0].stage: StageStats(runs[0].stage, runs)}

    stage("features", "5b. feature worker over Kafka", features_worker)  # fmt: skip

    def features_full_season() -> dict[str, StageStats]:
        from streams.features.season import SEASON_GAMES

        m = stages.features_season(SEASON_GAMES)  # one run: ~1 minute, memory is the point
        m.stage = f"features: full season, {SEASON_GAMES:,} games: peak RSS"
        note = "one partition's state over a whole season in event-time order (games expire)"
        return {m.stage: StageStats(m.stage, [m], note)}

    if not quick:
        stage("features", "5c. feature state over a full season (one run)", features_full_season)

    if "features" in groups:
        from streams.features.quality import score_truth_run

        log("5d. feature quality against the simulator's ground truth...")
        try:
            extra["feature_quality"] = score_truth_run(settings.features)
            for kind, sc in extra["feature_quality"].items():
                log(
                    f"    {kind:6} labels {sc['labels']:>3}  detected {sc['detected']:>3}"
                    f"  precision {sc['precision']:.3f}  recall {sc['recall']:.3f}"
                )
        except Exception as exc:
            errors["feature quality"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors['feature quality']}")

    if "sink" in groups:
        # sinks.bench isolates itself (own prefix and schemas) and cleans up after itself.
        from sinks.bench import bench_sink, format_result

        log(f"6. sink: connector vs row-by-row INSERT ({size('sink')} staging odds lines)...")
        try:
            extra["sink"] = bench_sink(settings, size("sink"))
            for line in format_result(extra["sink"]).splitlines():
                log(f"  {line}")
        except Exception as exc:
            errors["sink"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors['sink']}")

    e2e: dict[str, Any] = {}
    if "e2e" in groups:
        rates = args.rates or ([500, 2_000] if quick else [2_000, 10_000])
        seconds = args.seconds if args.seconds is not None else (8.0 if quick else 60.0)
        log(f"7. end to end at {rates} raw records/s, {seconds:.0f}s each (3 workers running)")
        try:
            from oddsflow.bench.e2e import end_to_end

            e2e = end_to_end(settings, rates, seconds, 45 if quick else 90, log_dir, log)
        except Exception as exc:
            errors["end to end"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors['end to end']}")
            _traceback_if_verbose()

    live: dict[str, Any] = {}
    if "live" in groups:
        log("7b. live: event time = wall time, injected steam moves (staging, features, sink)")
        try:
            from oddsflow.bench.live import live_stage

            live = live_stage(settings, log_dir, log, ticks=30 if quick else 60)
        except Exception as exc:
            errors["live"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors['live']}")
            _traceback_if_verbose()

    backfill: dict[str, Any] = {}
    if "backfill" in groups:
        rows = 50_000 if quick else 250_000
        log(f"7c. backfill: a synthetic season of {rows:,} Pinnacle-format rows into all zones")
        try:
            from oddsflow.bench.backfill import backfill_stage

            backfill = backfill_stage(settings, rows, log_dir, log)
        except Exception as exc:
            errors["backfill"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {errors['backfill']}")
            _traceback_if_verbose()

    growth: list[StageStats] = []
    if "growth" in groups:
        log("8. growth: 1x, 4x, 16x input")
        for factor in (1, 4, 16):  # the staging worker process: its peak RSS
            n = size("growth_staging") * factor
            try:
                [m] = stages.staging_worker_memory(settings, n, log_dir)
                m.stage = f"growth: staging worker x{n}"
                growth.append(StageStats(m.stage, [m]))
                log(f"  {m.stage}: {m.rate:,.0f} raw/s, peak RSS {m.peak_rss_mb} MB")
            except Exception as exc:
                errors[f"growth_staging x{factor}"] = f"{type(exc).__name__}: {exc}"
                log(f"  FAILED: {errors[f'growth_staging x{factor}']}")
        for fn, key in ((stages.features_growth, "growth_features"),):
            for factor in (1, 4, 16):
                try:
                    g = repeat(fn, size(key) * factor, warmup=0, reps=1, log=log)
                    growth.extend(g.values())
                except Exception as exc:
                    errors[f"{key} x{factor}"] = f"{type(exc).__name__}: {exc}"
                    log(f"  FAILED: {errors[f'{key} x{factor}']}")

    lines = ["", "== stages (records/s: median of runs after a warm-up) ==", *stage_table(results)]
    for key, value in extra.items():
        if key == "sink" and isinstance(value, dict):
            from sinks.bench import format_result

            lines += ["", "== sink (staging odds lines into Postgres) ==", format_result(value)]
        elif key == "feature_quality" and isinstance(value, dict):
            lines += ["", "== feature quality against the simulator's ground truth =="]
            lines += [
                f"{kind:6} labels {sc['labels']:>3}  detected {sc['detected']:>3}"
                f"  precision {sc['precision']:.3f}  recall {sc['recall']:.3f}"
                for kind, sc in value.items()
            ]
        else:
            lines.append(f"{key}: {value}")
    if e2e:
        lines += ["", "== end to end (publish → row visible in Postgres) ==", *e2e_table(e2e)]
    if live:
        from oddsflow.bench.live import live_table

        lines += ["", "== live (raw record acknowledged → subscriber / row in Postgres) =="]
        lines += live_table(live)
    if backfill:
        from oddsflow.bench.backfill import backfill_table

        lines += ["", "== backfill (a season replayed into all four zones) =="]
        lines += backfill_table(backfill)
    if growth:
        lines += ["", "== growth (one run each; memory is the child's peak RSS) ==",
                  *stage_table(growth), *_growth_summary(growth)]  # fmt: skip
    if errors:
        lines += ["", "== failed ==", *(f"{k}: {v}" for k, v in errors.items())]
    chart_note = latency_chart(e2e, out / "latency.png") if e2e else "no end-to-end run"
    lines.append("")
    lines.append(f"report: {out / 'report.json'}; chart: {chart_note or out / 'latency.png'}")
    print("\n".join(lines), flush=True)
    report = {
        "mode": "quick" if quick else "full",
        "reps": reps,
        "machine": facts,
        "stages": [st.as_dict() for st in results],
        "optional": extra,
        "end_to_end": e2e,
        "live": live,
        "backfill": backfill,
        "growth": [st.as_dict() for st in growth],
        "errors": errors,
        "seconds": round(time.monotonic() - began, 1),
    }
    write_json(report, out / "report.json")
    return 1 if errors else 0


def _growth_summary(growth: list[StageStats]) -> list[str]:
    """Time per record and memory from 1x to 16x: linear time means flat seconds per record."""
    out = []
    for prefix in ("growth: staging", "growth: features"):
        rows = [g for g in growth if g.stage.startswith(prefix)]
        if len(rows) < 2:
            continue
        first, last = rows[0].runs[0], rows[-1].runs[0]
        per = lambda m: 1e6 * m.seconds / m.records  # noqa: E731
        mem = (
            f"peak RSS {first.peak_rss_mb:.0f} → {last.peak_rss_mb:.0f} MB"
            if first.peak_rss_mb and last.peak_rss_mb
            else ""
        )
        state = [r.runs[0].extra.get("state_entries", r.runs[0].extra.get("peak_state_size"))
                 for r in rows]  # fmt: skip
        out.append(
            f"{prefix}: {per(first):.0f} → {per(last):.0f} µs/record over 16x input; {mem};"
            f" state entries {state}"
        )
    return out
