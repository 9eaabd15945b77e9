"""One run of ``oddsflow bench``: every selected group in order, into a table, JSON and a chart.

:class:`BenchRun` holds what a run shares (its options, its clock and log, what it has measured
and what failed); each group is one method, in the order the table numbers them: the pipeline's
stages (1-5), the sink (6), end to end, live and backfill (7), growth (8). A group that fails is
one FAILED line and one entry under ``errors``; the others still report.
"""

from __future__ import annotations

import argparse
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import stages
from bench.harness import Measurement, StageStats, repeat
from bench.report import e2e_table, latency_chart, machine_facts, stage_table, write_json
from core.settings import Settings


def _traceback_if_verbose() -> None:
    """A failed stage is one FAILED line; its traceback with ``oddsflow -v bench``."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        traceback.print_exc()


class BenchRun:
    """The selected groups of one ``oddsflow bench``, run in order by :meth:`run`."""

    def __init__(
        self,
        settings: Settings,
        args: argparse.Namespace,
        sizes: dict[str, tuple[int, int]],
        groups: tuple[str, ...],
    ) -> None:
        self.settings = settings
        self.args = args
        self.quick = bool(args.quick)
        self.sizes = sizes
        self.reps = max(1, args.reps)
        self.groups = set(args.only or groups)
        self.out: Path = args.out
        self.log_dir = self.out / "logs"
        self.began = time.monotonic()
        self.results: list[StageStats] = []
        self.extra: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.e2e: dict[str, Any] = {}
        self.live: dict[str, Any] = {}
        self.backfill: dict[str, Any] = {}
        self.growth: list[StageStats] = []

    def size(self, key: str) -> int:
        return self.sizes[key][0 if self.quick else 1]

    def log(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.began:6.0f}s] {msg}", flush=True)

    def failed(self, key: str, exc: Exception, trace: bool = True) -> None:
        self.errors[key] = f"{type(exc).__name__}: {exc}"
        self.log(f"  FAILED: {self.errors[key]}")
        if trace:
            _traceback_if_verbose()

    def stage(self, group: str, title: str, fn: Callable[[], dict[str, StageStats]]) -> None:
        if group not in self.groups:
            return
        self.log(f"{title}...")
        try:
            found = fn()
            self.results.extend(found.values())
        except Exception as exc:  # one broken stage must not lose the others' figures
            self.failed(title, exc)

    def repeated(self, fn: Callable[..., Any], *args: Any) -> dict[str, StageStats]:
        return repeat(fn, *args, reps=self.reps, log=self.log)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        facts = machine_facts(self.settings)
        self.log(
            f"oddsflow bench ({'quick' if self.quick else 'full'}): {facts['cpu_count']} cores,"
            f" Python {facts['python']}, Kafka {facts['kafka_broker']},"
            f" Postgres {facts['postgres']}"
        )
        self.pipeline_stages()
        self.staging()
        self.features()
        self.sink()
        self.end_to_end()
        self.live_stage()
        self.backfill_stage()
        self.growth_stage()
        return self.report(facts)

    def pipeline_stages(self) -> None:
        s = self.settings
        self.stage(
            "ceiling",
            "1. ceiling: plain confluent-kafka produce/consume",
            lambda: self.repeated(stages.ceiling, s, self.size("ceiling")),
        )
        self.stage(
            "codec",
            "2. codec: OddsLine encode/decode (one core)",
            lambda: self.repeated(stages.codec, self.size("codec")),
        )
        self.stage(
            "publish",
            "3. collector publish",
            lambda: self.repeated(stages.publish, s, self.size("publish")),
        )

    def peer_quix(self) -> dict[str, StageStats]:
        runs = stages.peer_quix(self.settings, self.size("peer"), self.reps, self.log_dir, self.log)
        by_stage: dict[str, list[Measurement]] = {}
        for m in runs:
            by_stage.setdefault(m.stage, []).append(m)
        notes = {  # issue 17: oddsflow's staging >= 1.5x the peer's records/s, <= 0.6x its CPU
            "peer: Quix Streams staging app": "the staging work as a Quix Streams app "
            "(bench/peers): oddsflow's staging worker is compared with this",
            "peer: Quix Streams pass-through": "Quix alone: consume and forward, no processing",
        }
        return {k: StageStats(k, v, notes.get(k, "")) for k, v in by_stage.items()}

    def staging_worker(self) -> dict[str, StageStats]:
        s, n, reps, log_dir = self.settings, self.size("staging_worker"), self.reps, self.log_dir
        base = stages.staging_worker_baseline(s, max(2_000, n // 5), reps, log_dir)
        runs = stages.staging_worker(s, n, reps, log_dir)
        b, f = StageStats(base[0].stage, base), StageStats(runs[0].stage, runs)
        ratio = f.rate.median / b.rate.median if b.rate.median else float("nan")
        cpu = b.cpu_per_1k.median / f.cpu_per_1k.median if f.cpu_per_1k.median else float("nan")
        note = f"vs the faust per-event baseline: {ratio:.1f}x records/s, {cpu:.1f}x less CPU"
        peer = next((r for r in self.results if r.stage == "peer: Quix Streams staging app"), None)
        if peer is not None and peer.rate.median and f.cpu_per_1k.median:
            note += (  # issue 17: >= 1.5x the peer's records/s, <= 0.6x its CPU per record
                f"; vs the Quix peer: {f.rate.median / peer.rate.median:.2f}x records/s,"
                f" {f.cpu_per_1k.median / peer.cpu_per_1k.median:.2f}x its CPU per record"
            )
        return {b.stage: b, f.stage: StageStats(f.stage, runs, note)}

    def faust_ceiling(self) -> dict[str, StageStats]:
        s, n, reps, log_dir = self.settings, self.size("staging_worker"), self.reps, self.log_dir
        runs = stages.faust_ceiling(s, n, reps, log_dir)
        note = "faust alone: no processing, one send per record (what capped the faust worker)"
        tuned = stages.faust_ceiling(s, n, reps, log_dir, tuned=True)
        return {
            runs[0].stage: StageStats(runs[0].stage, runs, note),
            tuned[0].stage: StageStats(tuned[0].stage, tuned, "faust's best options"),
        }

    def staging(self) -> None:
        self.stage(
            "staging", "4. peer: Quix Streams staging app over Kafka (bench/peers)", self.peer_quix
        )
        self.stage(
            "staging",
            "4a. staging processor (pure, one core)",
            lambda: self.repeated(stages.staging_pure, self.size("staging_pure")),
        )
        self.stage("staging", "4b. staging worker over Kafka", self.staging_worker)
        self.stage(
            "staging", "4c. faust ceiling: pass-through agent over Kafka", self.faust_ceiling
        )
        if self.args.staging_memory:
            n_mem = self.args.staging_memory
            self.stage(
                "staging",
                f"4e. staging worker peak RSS after {n_mem:,} raw records",
                lambda: {
                    m.stage: StageStats(m.stage, [m])
                    for m in stages.staging_worker_memory(self.settings, n_mem, self.log_dir)
                },
            )

    def features_worker(self) -> dict[str, StageStats]:
        runs = stages.features_worker(
            self.settings, self.size("features_worker"), self.reps, self.log_dir
        )
        return {runs[0].stage: StageStats(runs[0].stage, runs)}

    def features_full_season(self) -> dict[str, StageStats]:
        from bench.season import SEASON_GAMES

        m = stages.features_season(SEASON_GAMES)  # one run: ~1 minute, memory is the point
        m.stage = f"features: full season, {SEASON_GAMES:,} games: peak RSS"
        note = "one partition's state over a whole season in event-time order (games expire)"
        return {m.stage: StageStats(m.stage, [m], note)}

    def features(self) -> None:
        self.stage(
            "features",
            "5a. feature engine (pure, one core)",
            lambda: self.repeated(stages.features_pure, self.size("features_pure")),
        )
        self.stage("features", "5b. feature worker over Kafka", self.features_worker)
        if not self.quick:
            self.stage(
                "features",
                "5c. feature state over a full season (one run)",
                self.features_full_season,
            )
        if "features" not in self.groups:
            return
        from bench.truth_score import score_truth_run

        self.log("5d. feature quality against the simulator's ground truth...")
        try:
            self.extra["feature_quality"] = score_truth_run(self.settings.features)
            for kind, sc in self.extra["feature_quality"].items():
                self.log(
                    f"    {kind:6} labels {sc['labels']:>3}  detected {sc['detected']:>3}"
                    f"  precision {sc['precision']:.3f}  recall {sc['recall']:.3f}"
                )
        except Exception as exc:
            self.failed("feature quality", exc, trace=False)

    def sink(self) -> None:
        if "sink" not in self.groups:
            return
        # bench.sink_rate isolates itself (own prefix and schemas) and cleans up after itself.
        from bench.sink_rate import bench_sink, format_result

        n = self.size("sink")
        self.log(f"6. sink: connector vs row-by-row INSERT ({n} staging odds lines)...")
        try:
            self.extra["sink"] = bench_sink(self.settings, n)
            for line in format_result(self.extra["sink"]).splitlines():
                self.log(f"  {line}")
        except Exception as exc:
            self.failed("sink", exc, trace=False)

    def end_to_end(self) -> None:
        if "e2e" not in self.groups:
            return
        quick = self.quick
        rates = self.args.rates or ([500, 2_000] if quick else [2_000, 10_000])
        seconds = self.args.seconds if self.args.seconds is not None else (8.0 if quick else 60.0)
        self.log(f"7. end to end at {rates} raw records/s, {seconds:.0f}s each (3 workers running)")
        try:
            from bench.e2e import end_to_end

            self.e2e = end_to_end(
                self.settings, rates, seconds, 45 if quick else 90, self.log_dir, self.log
            )
        except Exception as exc:
            self.failed("end to end", exc)

    def live_stage(self) -> None:
        if "live" not in self.groups:
            return
        self.log("7b. live: event time = wall time, injected steam moves (staging, features, sink)")
        try:
            from bench.live_stage import live_stage

            ticks = 30 if self.quick else 60
            self.live = live_stage(self.settings, self.log_dir, self.log, ticks=ticks)
        except Exception as exc:
            self.failed("live", exc)

    def backfill_stage(self) -> None:
        if "backfill" not in self.groups:
            return
        rows = 50_000 if self.quick else 250_000
        self.log(
            f"7c. backfill: a synthetic season of {rows:,} Pinnacle-format rows into all zones"
        )
        try:
            from bench.backfill_stage import backfill_stage

            self.backfill = backfill_stage(self.settings, rows, self.log_dir, self.log)
        except Exception as exc:
            self.failed("backfill", exc)

    def growth_stage(self) -> None:
        if "growth" not in self.groups:
            return
        self.log("8. growth: 1x, 4x, 16x input")
        for factor in (1, 4, 16):  # the staging worker process: its peak RSS
            n = self.size("growth_staging") * factor
            try:
                [m] = stages.staging_worker_memory(self.settings, n, self.log_dir)
                m.stage = f"growth: staging worker x{n}"
                self.growth.append(StageStats(m.stage, [m]))
                self.log(f"  {m.stage}: {m.rate:,.0f} raw/s, peak RSS {m.peak_rss_mb} MB")
            except Exception as exc:
                self.failed(f"growth_staging x{factor}", exc, trace=False)
        for fn, key in ((stages.features_growth, "growth_features"),):
            for factor in (1, 4, 16):
                try:
                    g = repeat(fn, self.size(key) * factor, warmup=0, reps=1, log=self.log)
                    self.growth.extend(g.values())
                except Exception as exc:
                    self.failed(f"{key} x{factor}", exc, trace=False)

    # -- the report ----------------------------------------------------------------------------

    def extra_lines(self) -> list[str]:
        lines: list[str] = []
        for key, value in self.extra.items():
            if key == "sink" and isinstance(value, dict):
                from bench.sink_rate import format_result

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
        return lines

    def table_lines(self) -> list[str]:
        lines = ["", "== stages (records/s: median of runs after a warm-up) =="]
        lines += [*stage_table(self.results), *self.extra_lines()]
        if self.e2e:
            lines += ["", "== end to end (publish → row visible in Postgres) =="]
            lines += e2e_table(self.e2e)
        if self.live:
            from bench.live_stage import live_table

            lines += ["", "== live (raw record acknowledged → subscriber / row in Postgres) =="]
            lines += live_table(self.live)
        if self.backfill:
            from bench.backfill_stage import backfill_table

            lines += ["", "== backfill (a season replayed into all four zones) =="]
            lines += backfill_table(self.backfill)
        if self.growth:
            lines += ["", "== growth (one run each; memory is the child's peak RSS) ==",
                      *stage_table(self.growth), *growth_summary(self.growth)]  # fmt: skip
        if self.errors:
            lines += ["", "== failed ==", *(f"{k}: {v}" for k, v in self.errors.items())]
        return lines

    def report(self, facts: dict[str, Any]) -> int:
        """Print the table; write report.json and latency.png; 1 if any group failed."""
        out = self.out
        lines = self.table_lines()
        chart_note = (
            latency_chart(self.e2e, out / "latency.png") if self.e2e else "no end-to-end run"
        )
        lines.append("")
        lines.append(f"report: {out / 'report.json'}; chart: {chart_note or out / 'latency.png'}")
        print("\n".join(lines), flush=True)
        report = {
            "mode": "quick" if self.quick else "full",
            "reps": self.reps,
            "machine": facts,
            "stages": [st.as_dict() for st in self.results],
            "optional": self.extra,
            "end_to_end": self.e2e,
            "live": self.live,
            "backfill": self.backfill,
            "growth": [st.as_dict() for st in self.growth],
            "errors": self.errors,
            "seconds": round(time.monotonic() - self.began, 1),
        }
        write_json(report, out / "report.json")
        return 1 if self.errors else 0


def growth_summary(growth: list[StageStats]) -> list[str]:
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
