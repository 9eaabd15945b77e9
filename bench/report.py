"""The benchmark's outputs: a printed table, ``report.json`` and ``latency.png``.

Every figure printed is a median of the repetitions with min and max beside it, so a reader can
see at a glance how noisy the machine was during the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness import StageStats
from core.settings import Settings


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts(settings: Settings) -> dict[str, Any]:
    """Cores, memory, OS and the versions of everything on the measured path."""
    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "kafka_configured_version": settings.kafka.kafka_version,
        "kafka_partitions": settings.kafka.partitions,
        "confluent_kafka": _version("confluent-kafka"),
        "faust_streaming": _version("faust-streaming"),
        "fastavro": _version("fastavro"),
        "quixstreams": _version("quixstreams"),  # the peer stage (bench/peers)
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        import confluent_kafka

        facts["librdkafka"] = confluent_kafka.libversion()[0]
    except Exception:
        pass
    try:
        with open("/proc/meminfo") as fh:
            facts["memory_gb"] = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts["kafka_broker"] = _kafka_version(settings)
    facts["postgres"] = _postgres_version(settings)
    return facts


def _kafka_version(settings: Settings) -> str:
    """The broker's version as the local services report it, else the configured one."""
    try:
        from oddsflow import services

        _ok, lines = services.status(settings)
        for line in lines:
            if line.startswith("kafka") and "Kafka" in line:
                return line.rsplit("Kafka", 1)[1].strip(" )")
    except Exception:
        pass
    return f"{settings.kafka.kafka_version} (configured)"


def _postgres_version(settings: Settings) -> str | None:
    import asyncpg

    async def q() -> str:
        conn = await asyncpg.connect(settings.postgres.dsn)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(q())
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None or x != x:  # None or NaN
        return "-"
    return f"{x:,.{digits}f}"


def stage_table(stages: list[StageStats]) -> list[str]:
    """One line per stage: records/s median [min–max], CPU s per 1,000 records, peak RSS."""
    head = (
        f"{'stage':46} {'records/s median':>16} {'[min – max]':>23} {'CPU s/1k':>9}"
        f" {'peak RSS MB':>11} {'runs':>4}"
    )
    lines = [head, "-" * len(head)]
    for st in stages:
        r, c, m = st.rate, st.cpu_per_1k, st.peak_rss
        lines.append(
            f"{st.stage[:46]:46} {_fmt(r.median):>16} {_fmt(r.min):>10} – {_fmt(r.max):<10}"
            f" {_fmt(c.median, 3):>9} {_fmt(m.median if m else None, 0):>11} {r.n:>4}"
        )
        if st.note:
            lines.append(f"{'':4}{st.note}")
    return lines


def e2e_table(e2e: dict[str, Any]) -> list[str]:
    lines = [
        f"{'offered/s':>9} {'sent/s':>7} | {'raw p50/p95/p99 ms':>22} |"
        f" {'staging p50/p95/p99 ms':>24} | {'curated p50/p99 ms':>18} |"
        f" {'lag grew':>8} {'drained':>7}",
    ]
    lines.append("-" * len(lines[0]))
    for r in e2e.get("rates", []):

        def z(name: str, keys: tuple[str, ...], r: dict[str, Any] = r) -> str:
            d = r[name]
            return "/".join(_fmt(d.get(k)) for k in keys) if d.get("rows") else "no rows"

        lines.append(
            f"{r['offered_per_s']:>9,} {r['published_per_s']:>7,} |"
            f" {z('raw_zone', ('p50_ms', 'p95_ms', 'p99_ms')):>22} |"
            f" {z('staging_zone', ('p50_ms', 'p95_ms', 'p99_ms')):>24} |"
            f" {z('curated_zone', ('p50_ms', 'p99_ms')):>18} |"
            f" {r['lag_grew']!s:>8} {r['drained']!s:>7}"
        )
    best = e2e.get("highest_rate_without_growing_lag")
    lines.append(f"highest offered rate sustained without growing lag: {_fmt(best)} raw records/s")
    return lines


def latency_chart(e2e: dict[str, Any], path: Path) -> str | None:
    """Latency (p50, p95, p99) against offered load, per zone; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart"
    rates = e2e.get("rates", [])
    if not rates:
        return "no end-to-end results: no chart"
    fig, ax = plt.subplots(figsize=(8, 5))
    x = [r["offered_per_s"] for r in rates]
    styles = {"p50_ms": "-", "p95_ms": "--", "p99_ms": ":"}
    for zone, colour in (("raw_zone", "tab:grey"), ("staging_zone", "tab:blue")):
        for key, style in styles.items():
            y = [r[zone].get(key) for r in rates]
            if any(v is not None for v in y):
                label = f"{zone.split('_')[0]} {key.split('_')[0]}"
                ax.plot(x, [v if v is not None else float("nan") for v in y], style,
                        marker="o", color=colour, label=label)  # fmt: skip
    y = [r["curated_zone"].get("p50_ms") for r in rates]
    if any(v is not None for v in y):
        ax.plot(x, [v if v is not None else float("nan") for v in y], "-", marker="s",
                color="tab:orange", label="curated p50 (incl. lateness buffer)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (raw records/s)")
    ax.set_ylabel("publish → row visible in Postgres (ms)")
    ax.set_title("oddsflow end-to-end latency vs offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
