"""Measure the Quix Streams peer (``quix_app``) over raw records already on a topic.

Each run is a fresh subprocess with a fresh consumer group and state folder reading the topic
from the start (``auto_offset_reset="earliest"``), so its CPU is the app's alone and no run
inherits another's state or offsets. The clock runs from the first raw record the app has
processed to the moment every raw record and every line it made have been processed (then the
app stops itself and flushes); start-up (imports, group join, internal topic creation) and
shutdown are reported beside it, not in it. Afterwards the runner counts the output topic and
deletes it with Quix's internal topics.

Alone: ``python -m bench.peers.quix_staging --records 40000`` publishes that many records of the
simulator's bench slate to a fresh topic and prints the medians of ``--reps`` runs of the
staging app and of the pass-through app.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench.harness import Measurement, StageStats
from core.settings import Settings

MODES: Final = ("staging", "staging-per-line", "passthrough")
DEFAULT_MODES: Final = ("staging", "passthrough")
LABELS: Final = {
    "staging": "peer: Quix Streams staging app",
    "staging-per-line": "peer: Quix Streams staging app, group_by per line",
    "passthrough": "peer: Quix Streams pass-through",
}


@dataclass(frozen=True)
class PeerResult:
    """One run of the peer app over ``records`` raw records."""

    mode: str
    records: int  # raw records processed
    lines: int  # lines the app made from them (staging; the records themselves for passthrough)
    outputs: int  # records on the output topic afterwards (staging: the de-dup's changed lines)
    seconds: float  # first raw record processed → everything processed
    cpu_seconds: float  # the app process's CPU (all its threads) over the same window
    startup_seconds: float  # process start → first raw record processed
    shutdown_seconds: float  # everything processed → the app stopped (final commit, close)
    total_cpu_seconds: float  # the app process's CPU over its whole life (getrusage)
    peak_rss_mb: float | None
    complete: bool  # every raw record and line was processed before the deadline

    def measurement(self) -> Measurement:
        """The run as the benchmark's table takes it (records/s, CPU s per 1k records)."""
        extra = {k: getattr(self, k) for k in ("outputs", "lines", "startup_seconds")}
        extra["total_cpu_seconds"] = self.total_cpu_seconds
        return Measurement(
            LABELS[self.mode], self.records, self.seconds, self.cpu_seconds, self.peak_rss_mb, extra
        )


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def peer_python() -> str:
    """The peer environment's interpreter (.venv-peer: quixstreams pins older confluent-kafka
    and pydantic than the pipeline uses, so the two never share an environment)."""
    python = _repo_root() / ".venv-peer" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"the Quix peer runs in {python.parent.parent}, which is missing: run `make bench`"
            " (or `make test`) once to create it"
        )
    return str(python)


def run_peer(
    settings: Settings,
    input_topic: str,
    n_records: int,
    *,
    mode: str = "staging",
    log_path: Path | None = None,
    timeout: float | None = None,
) -> PeerResult:
    """Run the peer app in a subprocess until it has processed ``n_records`` of ``input_topic``.

    Raises RuntimeError when the app exits without a result; a run that hit ``timeout``
    (default 120 s + 1 ms a record) is stopped with SIGTERM and returned with complete=False.
    """
    from bench.stages import create_topic, delete_topics
    from core.isolation import child_env

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    python = peer_python()
    run_id = uuid.uuid4().hex[:8]
    group = f"{settings.kafka.topic_prefix}quix-peer-{mode}-{run_id}"
    output = f"{input_topic}.quix-{mode}-{run_id}"
    work = Path(tempfile.mkdtemp(prefix="quix-peer-"))
    spec = {
        "mode": mode,
        "input": input_topic,
        "output": output,
        "group": group,
        "state_dir": str(work / "state"),
        "records": n_records,
        "result": str(work / "result.json"),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    env = child_env(settings)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_repo_root()), env.get("PYTHONPATH")) if p)
    log = open(log_path, "wb") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    proc: subprocess.Popen[bytes] | None = None
    try:
        create_topic(settings, output)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(
            [python, "-m", "bench.peers.quix_staging", "--child", str(work / "spec.json")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=_repo_root(), start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout if timeout is not None else 120 + n_records / 1000)
        except subprocess.TimeoutExpired:
            proc.terminate()  # Quix stops gracefully on SIGTERM; the child still reports
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result_file = work / "result.json"
        if not result_file.exists():
            if log_path:
                where = f"see {log_path}"
            else:
                log.seek(0)
                where = log.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the Quix peer exited {proc.returncode} without a result: {where}")
        r = json.loads(result_file.read_text())
        outputs = _records_on(settings, output)
    finally:
        if proc is not None and proc.poll() is None:  # interrupted: leave no app behind
            proc.kill()
            proc.wait()
        log.close()
        _delete_run_topics(settings, output, group, delete_topics)
        shutil.rmtree(work, ignore_errors=True)
    total_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return PeerResult(
        mode=mode,
        records=r["records"],
        lines=r["lines"],
        outputs=outputs,
        seconds=r["seconds"],
        cpu_seconds=r["cpu_seconds"],
        startup_seconds=r["startup_seconds"],
        shutdown_seconds=r["shutdown_seconds"],
        total_cpu_seconds=round(total_cpu, 3),
        peak_rss_mb=r["peak_rss_mb"],
        complete=r["complete"],
    )


def _records_on(settings: Settings, topic: str) -> int:
    """Records written to every partition of ``topic`` (its end offsets; nothing is deleted)."""
    from confluent_kafka import Consumer, TopicPartition

    from core.kafka_config import client_config

    consumer = Consumer(client_config(settings, **{"group.id": f"{topic}-count"}))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        )
    finally:
        consumer.close()


def _delete_run_topics(
    settings: Settings, output: str, group: str, delete: Callable[[Settings, list[str]], None]
) -> None:
    """The run's output topic and Quix's internal topics (their names contain the group)."""
    from core.admin import admin_client

    try:
        names = [t for t in admin_client(settings).list_topics(timeout=10).topics if group in t]
    except Exception:  # best effort: a leftover bench topic is harmless
        names = []
    delete(settings, [output, *names])


# ---------------------------------------------------------------------------------------------
# inside the subprocess


def _child(spec_path: str) -> int:
    """Run the app of the spec until it has processed everything, then write the result."""
    started = time.monotonic()
    spec = json.loads(Path(spec_path).read_text())
    from quixstreams import Application
    from quixstreams.kafka.configuration import ConnectionConfig

    from bench.harness import peak_rss_mb
    from bench.peers import quix_app
    from core.kafka_config import security_config
    from core.settings import load_settings

    s = load_settings()
    n = int(spec["records"])
    mode = spec["mode"]
    per_line = mode == "staging-per-line"
    # parts: repartition messages processed; due: those the app has made so far
    meter: dict[str, Any] = {"raw": 0, "parts": 0, "due": 0, "lines": 0}
    meter |= {"first": None, "done": None}

    def count_lines(envelope: dict[str, Any]) -> list[dict[str, Any]]:
        lines = quix_app.event_lines(envelope)
        meter["lines"] += len(lines)
        meter["due"] += len(lines) if per_line else 1 if lines else 0
        return lines

    def processed(topic: str, _partition: int, _offset: int) -> None:
        if meter["first"] is None:
            meter["first"] = (time.monotonic(), time.process_time())
        if topic == spec["input"]:
            meter["raw"] += 1
        else:
            meter["parts"] += 1
        if meter["raw"] >= n and meter["parts"] >= meter["due"] and meter["done"] is None:
            meter["done"] = (time.monotonic(), time.process_time())
            app.stop()

    connection = ConnectionConfig.from_librdkafka_dict(
        {"bootstrap.servers": s.kafka.bootstrap_servers, **security_config(s)}
    )
    app = Application(
        broker_address=connection,
        consumer_group=spec["group"],
        auto_offset_reset="earliest",
        state_dir=spec["state_dir"],
        on_message_processed=processed,
        loglevel="WARNING",
    )
    if mode.startswith("staging"):
        quix_app.staging_app(
            app, spec["input"], spec["output"], per_line=per_line, transform=count_lines
        )
    else:
        quix_app.passthrough_app(app, spec["input"], spec["output"])
    app.run()
    ended = (time.monotonic(), time.process_time())
    first = meter["first"] or ended
    done = meter["done"] or ended
    result = {
        "records": meter["raw"],
        "lines": meter["lines"] if mode.startswith("staging") else meter["raw"],
        "seconds": round(done[0] - first[0], 4),
        "cpu_seconds": round(done[1] - first[1], 4),
        "startup_seconds": round(first[0] - started, 3),
        "shutdown_seconds": round(ended[0] - done[0], 3),
        "peak_rss_mb": peak_rss_mb(),
        "complete": meter["done"] is not None,
    }
    Path(spec["result"]).write_text(json.dumps(result))
    return 0 if result["complete"] else 1


# ---------------------------------------------------------------------------------------------
# the benchmark's use, and running it alone


def measure(
    settings: Settings,
    n: int,
    reps: int = 3,
    modes: Sequence[str] = DEFAULT_MODES,
    log_dir: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, list[PeerResult]]:
    """Publish ``n`` raw records of the simulator's bench slate (the staging stage's input) to a
    fresh topic under ``settings``' prefix, then ``reps`` runs of each mode over them."""
    from bench.stages import create_topic, delete_topics, produce_all, raw_envelopes
    from core.topics import raw_topic, topic_name

    topic = topic_name(settings, raw_topic("simulator")) + f".peer{uuid.uuid4().hex[:6]}"
    create_topic(settings, topic)
    runs: dict[str, list[PeerResult]] = {m: [] for m in modes}
    try:
        produce_all(settings, topic, raw_envelopes(n, seed=7, days_back=3))
        for mode in modes:
            for i in range(reps):
                log_path = None
                if log_dir is not None:
                    log_dir.mkdir(parents=True, exist_ok=True)
                    log_path = log_dir / f"{settings.kafka.topic_prefix}quix-{mode}-{i + 1}.log"
                r = run_peer(settings, topic, n, mode=mode, log_path=log_path)
                if not r.complete:
                    raise RuntimeError(f"the Quix {mode} peer did not finish: {asdict(r)}")
                runs[mode].append(r)
                m = r.measurement()
                log(
                    f"    run {i + 1}/{reps} {m.stage}: {m.rate:,.0f} raw records/s, "
                    f"{m.cpu_per_1k:.3f} CPU s/1k ({r.outputs:,} outputs)"
                )
    finally:
        delete_topics(settings, [topic])
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers.quix_staging",
        description="The staging work as a Quix Streams app, measured over the simulator's "
        "bench slate (the settings' broker, a fresh topic prefix).",
    )
    parser.add_argument("--records", type=int, default=40_000, help="raw records per run")
    parser.add_argument("--reps", type=int, default=3, help="runs per mode")
    parser.add_argument("--modes", nargs="*", choices=MODES, default=list(DEFAULT_MODES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child)

    from core.isolation import isolated_settings
    from core.settings import load_settings

    s = isolated_settings(load_settings(), kind="b")
    print(f"{args.records:,} raw records, {args.reps} runs per mode ({s.kafka.bootstrap_servers})")
    runs = measure(s, args.records, args.reps, args.modes, log=print)
    for mode, rs in runs.items():
        st = StageStats(LABELS[mode], [r.measurement() for r in rs])
        start = statistics.median(r.startup_seconds for r in rs)
        print(
            f"{st.stage}: median {st.rate.median:,.0f} raw records/s (min {st.rate.min:,.0f}, "
            f"max {st.rate.max:,.0f}), {st.cpu_per_1k.median:.3f} CPU s per 1k records; "
            f"start-up {start:.1f}s (not timed); outputs {[r.outputs for r in rs]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
