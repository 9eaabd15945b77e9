"""Repetitions, statistics and resource accounting shared by every benchmark stage.

Why a child process per run: ``ru_maxrss`` is a high-water mark for the life of a process, so
in-process stages measured one after another would all report the largest one. A forked child
starts from the parent's memory and reports its own peak, and a crash in one stage cannot take the
whole benchmark down.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, min and max of repeated measurements (median: robust to one noisy run)."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    lo = math.floor(rank)
    hi = math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


@dataclass
class Measurement:
    """One run of one stage: records handled, wall seconds, CPU seconds, peak RSS."""

    stage: str
    records: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_per_1k(self) -> float:
        return 1000 * self.cpu_seconds / self.records if self.records else float("nan")


@dataclass
class Timer:
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """Wall clock (perf_counter) and this process's CPU time (user + system) of a block."""
    t = Timer()
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - w0
        t.cpu_seconds = time.process_time() - c0


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux: VmHWM, which starts afresh at exec; ru_maxrss does not (a spawned child inherits
    the parent's size at fork, so every isolated stage read as large as the bench process).
    Elsewhere ru_maxrss (macOS reports it in bytes).
    """
    hwm = proc_peak_rss_mb(os.getpid())
    if hwm is not None:
        return hwm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process (a worker), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another process, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _child(conn: Any, fn: Callable[..., list[Measurement]], args: tuple[Any, ...]) -> None:
    try:
        result: Any = fn(*args)
        rss = peak_rss_mb()
        for m in result:
            if m.peak_rss_mb is None:
                m.peak_rss_mb = rss
        conn.send(("ok", result))
    except BaseException as exc:  # report any failure to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., list[Measurement]], *args: Any, timeout: float = 900
) -> list[Measurement]:
    """Run ``fn(*args)`` in a fresh child; its measurements get the child's peak RSS.

    Spawned, not forked: after the Kafka stages the parent holds librdkafka and asyncio
    threads, and a forked child of a multi-threaded parent died before reporting (EOFError);
    a spawned one also starts from a clean heap, so its peak RSS is its own.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} took longer than {timeout:.0f}s")
        status, payload = parent.recv()
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
    if status != "ok":
        raise RuntimeError(payload)
    return payload


@dataclass
class StageStats:
    """A stage's repetitions and their summaries, as they go into the table and the report."""

    stage: str
    runs: list[Measurement]
    note: str = ""

    @property
    def rate(self) -> Summary:
        return summarize([m.rate for m in self.runs])

    @property
    def cpu_per_1k(self) -> Summary:
        return summarize([m.cpu_per_1k for m in self.runs])

    @property
    def peak_rss(self) -> Summary | None:
        vals = [m.peak_rss_mb for m in self.runs if m.peak_rss_mb is not None]
        return summarize(vals) if vals else None

    def as_dict(self) -> dict[str, Any]:
        rss = self.peak_rss
        return {
            "stage": self.stage,
            "records_per_s": self.rate.as_dict(),
            "cpu_s_per_1k": self.cpu_per_1k.as_dict(),
            "peak_rss_mb": rss.as_dict() if rss else None,
            "records_per_run": [m.records for m in self.runs],
            "note": self.note,
            "runs": [
                {
                    "records": m.records,
                    "seconds": m.seconds,
                    "cpu_seconds": m.cpu_seconds,
                    "peak_rss_mb": m.peak_rss_mb,
                    **m.extra,
                }
                for m in self.runs
            ],
        }


def repeat(
    fn: Callable[..., list[Measurement]],
    *args: Any,
    warmup: int = 1,
    reps: int = 3,
    isolated: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, StageStats]:
    """Warm up, then ``reps`` runs; measurements grouped by stage name (one fn may time several)."""
    call = (lambda: run_isolated(fn, *args)) if isolated else (lambda: fn(*args))
    for _ in range(warmup):
        call()
    grouped: dict[str, StageStats] = {}
    for i in range(reps):
        for m in call():
            grouped.setdefault(m.stage, StageStats(m.stage, [])).runs.append(m)
            log(f"    run {i + 1}/{reps} {m.stage}: {m.rate:,.0f} records/s")
    return grouped
