"""The benchmark stages: each returns measurements of one run; the harness repeats them.

Inputs are generated before the clock starts (a benchmark of the simulator's JSON is not a
benchmark of the pipeline), except where a stage must stream its input to keep memory honest
(growth). Every Kafka stage runs under its own topic prefix and Postgres schemas, so the bench
never touches the pipeline's real topics or tables.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.harness import Measurement, proc_cpu_seconds, proc_peak_rss_mb, timed
from core.isolation import child_env
from core.isolation import isolated_settings as _isolated
from core.kafka_config import client_config, consumer_config, producer_config
from core.settings import Settings
from core.topics import raw_topic, topic_name
from oddsflow.processes import running_workers
from producers.simulator import Simulator
from schemas.codec import default_codec

ENVELOPE = "oddsflow.raw.RawEnvelope"
GAMES, BOOKS = 15, 20  # a full MLB slate quoted by 20 books: 300 raw records a tick
STAGING_OUT = ("staging.odds_lines", "staging.betting_splits", "staging.games", "dlq.staging")
CURATED_OUT = (
    "curated.line_velocity",
    "curated.steam_moves",
    "curated.sharp_signals",
    "curated.consensus",
    "curated.feature_vectors",
    "dlq.features",
)


# ---------------------------------------------------------------------------------------------
# isolation and inputs


def isolated_settings(settings: Settings, tag: str | None = None) -> Settings:
    """Settings with a unique topic prefix and unique Postgres schemas (as the tests do)."""
    return _isolated(settings, tag, kind="b")


def settings_env(s: Settings) -> dict[str, str]:
    """Environment that makes a child ``oddsflow`` process use exactly these settings."""
    return child_env(s)


def simulator(n: int, seed: int = 7, days_back: int = 1) -> Simulator:
    """A slate big enough for ``n`` raw records, ``days_back`` days ago.

    Distinct days give distinct game ids, so batches never de-duplicate against each other.
    """
    ticks = max(1, math.ceil(n / (GAMES * BOOKS)))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(
        days=days_back, seconds=ticks * 30
    )
    return Simulator(seed=seed, games=GAMES, books=BOOKS, ticks=ticks, start=start)


def envelope_record(event_id: str, payload: bytes, fetched_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "simulator",
        "fetched_at": fetched_at,
        "content_type": "application/json",
        "payload": payload,
        "request": {},
    }


def raw_envelopes(n: int, seed: int = 7, days_back: int = 1) -> list[tuple[bytes, bytes]]:
    """``n`` encoded raw envelopes (key, value) exactly as the collector publishes them."""
    enc = default_codec().encoder(ENVELOPE)
    out: list[tuple[bytes, bytes]] = []
    for event_id, payload, fetched in simulator(n, seed, days_back).envelopes():
        out.append((event_id.encode(), enc(envelope_record(event_id, payload, fetched))))
        if len(out) == n:
            break
    return out


def admin(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def create_topic(settings: Settings, name: str) -> None:
    client = admin(settings)  # must outlive the future, or librdkafka cancels it
    fut = client.create_topics(
        [NewTopic(name, num_partitions=settings.kafka.partitions, replication_factor=1)]
    )
    fut[name].result()


def delete_topics(settings: Settings, names: list[str]) -> None:
    client = admin(settings)
    for fut in client.delete_topics(names, operation_timeout=30).values():
        with suppress(Exception):  # best effort: a leftover bench topic is harmless
            fut.result()


def end_offsets(consumer: Consumer, settings: Settings, topics: Iterable[str]) -> int:
    """Sum of the end offsets of every partition of ``topics`` (records ever written)."""
    total = 0
    for t in topics:
        for p in range(settings.kafka.partitions):
            try:
                _lo, hi = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=5)
            except Exception:  # a topic the worker has not written yet
                continue
            total += max(hi, 0)
    return total


# ---------------------------------------------------------------------------------------------
# 1. ceiling


def ceiling(settings: Settings, n: int) -> list[Measurement]:
    """Plain confluent-kafka, no processing: produce then consume ``n`` raw records."""
    records = raw_envelopes(n)
    topic = f"bench{uuid.uuid4().hex[:8]}.ceiling"
    create_topic(settings, topic)
    try:
        producer = Producer(producer_config(settings))
        for _ in range(2):  # meet the leader before the clock (see Publisher.connect)
            producer.list_topics(topic, timeout=10)
        with timed() as tp:
            for key, value in records:
                while True:
                    try:
                        producer.produce(topic, value=value, key=key)
                        break
                    except BufferError:
                        producer.poll(0.05)
            left = producer.flush(60)
        if left:
            raise RuntimeError(f"{left} records not acknowledged")
        consumer = Consumer(consumer_config(settings, f"{topic}-reader"))
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.kafka.partitions)]
        )
        got = 0
        while not got:  # the first fetch (connect, find the leader) is start-up, not throughput
            got = sum(1 for m in consumer.consume(1, timeout=1.0) if not m.error())
        with timed() as tc:
            while got < n:
                got += sum(1 for m in consumer.consume(10_000, timeout=1.0) if not m.error())
        consumer.close()
    finally:
        delete_topics(settings, [topic])
    size = sum(len(v) for _, v in records) / n
    extra = {"bytes_per_record": round(size)}
    return [
        Measurement("ceiling: produce (acks=all)", n, tp.seconds, tp.cpu_seconds, extra=extra),
        Measurement("ceiling: consume", n, tc.seconds, tc.cpu_seconds, extra=extra),
    ]


# ---------------------------------------------------------------------------------------------
# 2. codec


def codec(n: int) -> list[Measurement]:
    """Encode and decode of a staging OddsLine on one core (bench.codec_rate.bench_codec)."""
    from bench.codec_rate import bench_codec

    with timed() as t:
        r = bench_codec(n, runs=1)
    enc_s, dec_s = n / r["encode_per_s"], n / r["decode_per_s"]
    share = t.cpu_seconds / (enc_s + dec_s) if enc_s + dec_s else 0.0  # one thread: CPU ≈ wall
    extra = {"bytes_per_record": r["bytes_per_record"]}
    return [
        Measurement("codec: encode OddsLine", n, enc_s, enc_s * share, extra=extra),
        Measurement("codec: decode OddsLine", n, dec_s, dec_s * share, extra=extra),
    ]


# ---------------------------------------------------------------------------------------------
# 3. collector publish


PUBLISH_SIM_MIN = 100_000  # records per simulator run: a shorter run times the flush, not the rate


def publish(settings: Settings, n: int) -> list[Measurement]:
    """The collectors' publish rates into fresh raw topics, one run each (bench/publish_rate.py).

    The generic Publisher on ``n`` pre-generated envelopes; the simulator's encoded records
    without Kafka and published incl. generation (``oddsflow collect --source simulator``, at
    least ``PUBLISH_SIM_MIN`` records); the Pinnacle sample replayed by the file collector.
    Producers are connected before the clock; rates count broker-acknowledged records.
    """
    from bench import publish_rate as bench

    s = isolated_settings(settings)
    topics = [topic_name(s, raw_topic(source)) for source in ("simulator", "file")]
    for topic in topics:
        create_topic(s, topic)
    n_sim = max(n, PUBLISH_SIM_MIN)
    runs: list[tuple[str, dict[str, Any]]] = []
    try:  # the short replay first: not in the wake of the broker writing 100k records
        if (s.data_dir / bench.PINNACLE).exists():
            runs.append(("file replay: Pinnacle sample (read+publish)", bench.run_replay(s)))
        runs.append(("collector publish (simulator, pre-generated)", bench.run_pregenerated(s, n)))
        runs.append(("simulator: generate + encode (no Kafka)", bench.run_generate(n_sim)))
        runs.append(("simulator publish incl. generation", bench.run_simulator(s, n_sim)))
    finally:
        delete_topics(s, topics)
    extras = ("failed", "read_sort_seconds")
    return [
        Measurement(
            label, r["records"], r["seconds"], r["cpu_seconds"],
            extra={k: r[k] for k in extras if k in r},
        )
        for label, r in runs
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 4. staging: the peer, then oddsflow


def peer_quix(
    settings: Settings,
    n: int,
    reps: int,
    log_dir: Path,
    log: Callable[[str], None] = lambda _m: None,
) -> list[Measurement]:
    """The staging work as a Quix Streams app and Quix's pass-through (``bench/peers``, issue
    17), each run a fresh process over the same ``n`` raw records of the bench slate: the peer
    oddsflow's staging is measured against. Clock and CPU: first raw record → all processed."""
    from bench.peers.quix_staging import measure

    runs = measure(isolated_settings(settings), n, reps, log_dir=log_dir, log=log)
    return [r.measurement() for rs in runs.values() for r in rs]


# ---------------------------------------------------------------------------------------------
# 4. staging, pure


def staging_pure(n: int) -> list[Measurement]:
    """The staging worker's own work, no Kafka (one core): process (parse, validate, quality
    gate at 0.8, encode, de-dup facts), the batch messages, and de-duplication by fact."""
    from streams.staging.batches import BatchWriter, decode_batch
    from streams.staging.dedupe import PartitionState, decode_fact
    from streams.staging.processor import Origin, StagingProcessor

    records = raw_envelopes(n)
    processor = StagingProcessor(quality_threshold=0.8)
    state = PartitionState()
    writer = BatchWriter(1)
    staged = emitted = dead = offset = 0
    origin_topic = raw_topic("simulator")
    with timed() as t:
        for i, (key, value) in enumerate(records):
            result = processor.process(Origin(origin_topic, 0, i, key), value)
            dead += len(result.dead)
            if result.records:
                writer.add(f"{origin_topic}:0:{i}", result)
            if i % 1000 == 999 or i == n - 1:  # the worker's take_events batches
                for _p, message in writer.messages():
                    offset += 1
                    for k, _key, _i, _o, _n, fact, frame in decode_batch(message):
                        staged += 1
                        if state.decide(decode_fact(fact), frame, offset, k).emit:
                            emitted += 1
    return [
        Measurement(
            "staging: processor + dedupe (pure)", n, t.seconds, t.cpu_seconds,
            extra={"staged": staged, "emitted": emitted, "dead": dead},
        ),
        staging_processor(records, fast_path=True),
        staging_processor(records, fast_path=False),
    ]  # fmt: skip


def staging_processor(records: list[tuple[bytes, bytes]], fast_path: bool) -> Measurement:
    """The processor alone on ``records``, with the typed hot path (its market plans cleared
    first: no head start from the run before) or with the generic parsers only — issue #17's
    before and after, side by side."""
    from streams.staging import fastpath
    from streams.staging.processor import Origin, StagingProcessor

    processor = StagingProcessor(quality_threshold=0.8, fast_path=fast_path)
    origin_topic = raw_topic("simulator")
    fastpath._PLANS.clear()
    with timed() as t:
        for i, (key, value) in enumerate(records):
            processor.process(Origin(origin_topic, 0, i, key), value)
    label = "typed hot path" if fast_path else "generic parsers only"
    return Measurement(f"staging: processor alone ({label})", len(records), t.seconds,
                       t.cpu_seconds)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 5. features, pure


def features_pure(n: int) -> list[Measurement]:
    """The feature engine as the worker runs it (results at once, 2,000-line batches) on
    synthetic staged lines (bench.engine_rate.bench_engine): each game's lines in
    event-time order (what staging delivers), and arriving up to 2 minutes late across batches
    (corrections)."""
    from bench.engine_rate import bench_engine

    out = []
    for label, jitter in (("in event-time order", 0.0), ("2 min of disorder: corrections", 120.0)):
        with timed() as t:
            r = bench_engine(n, arrival_jitter_s=jitter)
        cpu = t.cpu_seconds * r["seconds"] / t.seconds if t.seconds else 0.0  # minus generation
        out.append(
            Measurement(
                f"features: engine (pure), {label}", r["lines"], r["seconds"], cpu,
                extra={k: r[k] for k in ("outputs", "peak_state_size", "replays", "retracted")},
            )
        )  # fmt: skip
    return [*out, features_season(max(26, n // 400))]


def features_season(games: int) -> Measurement:
    """Peak RSS of one partition's feature state over ``games`` games of a season, in a fresh
    process (``bench.season``): a scaled season (the state is flat after two days of
    games; the full 2,430-game season is ``python -m bench.season``)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "bench.season", str(games)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    r = json.loads(done.stdout)
    return Measurement(
        f"features: season, {games} of 2,430 games (state expiry)", r["lines"], r["seconds"],
        cpu, r["peak_rss_mb"],
        extra={k: r[k] for k in ("live_games_max", "table_mb_max", "rss_mb_after_finals")},
    )  # fmt: skip


def feature_batches(n: int, batches: int) -> list[list[tuple[bytes, bytes]]]:
    """Encoded staged lines for the feature worker; each batch has its own games."""
    from bench.engine_rate import synthetic_lines

    enc = default_codec().encoder("oddsflow.staging.OddsLine")
    out = []
    for b in range(batches):
        batch = []
        for rec in synthetic_lines(n, seed=7 + b, arrival_jitter_s=0):  # as staging delivers
            rec["game_id"] = f"B{b}-{rec['game_id']}"
            batch.append((rec["game_id"].encode(), enc(rec)))
        out.append(batch)
    return out


# ---------------------------------------------------------------------------------------------
# workers over Kafka


@contextmanager
def worker_processes(
    settings: Settings, roles: tuple[str, ...], log_dir: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """``oddsflow worker ROLE`` subprocesses on ``settings``; always stopped afterwards."""
    prefix = settings.kafka.topic_prefix
    with running_workers(
        settings, roles, log_dir, log_name=lambda role: f"{prefix}{role}.log"
    ) as procs:
        yield procs


def produce_all(
    settings: Settings,
    topic: str,
    records: list[tuple[bytes, bytes]],
    producer: Producer | None = None,
) -> None:
    """Publish and wait for every acknowledgement (``producer``: one already connected, so a
    timed run does not include a new client's connection and idempotence handshake)."""
    producer = producer or Producer(producer_config(settings))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("records not acknowledged")


def group_lag(consumer: Consumer, settings: Settings, topics: list[str]) -> int:
    """Records of ``topics`` not yet committed by the consumer's group (faust commits ~1/s)."""
    parts = [TopicPartition(t, p) for t in topics for p in range(settings.kafka.partitions)]
    lag = 0
    for tp in consumer.committed(parts, timeout=5):
        try:
            _lo, hi = consumer.get_watermark_offsets(tp, timeout=5)
        except KafkaException:  # an internal topic the worker created after our metadata
            consumer.list_topics(tp.topic, timeout=5)  # refresh it (else stale for minutes)
            return 1
        # faust commits the offset of the last processed record on internal topics: allow 1
        lag += max(0, hi - max(tp.offset, 0) - 1)
    return lag


def wait_done(
    outputs: Callable[[], int], lag: Callable[[], int], alive: Callable[[], bool], timeout: float
) -> tuple[int, float, bool]:
    """Wait until the worker consumed its input and its outputs stopped growing.

    Returns (outputs, monotonic time of the last output, done). The number of outputs cannot be
    known in advance: records of one game arrive over several raw partitions, and the worker
    drops an out-of-order snapshot as stale, so the count depends on interleaving.
    """
    deadline = time.monotonic() + timeout
    n, last_change = outputs(), time.monotonic()
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("a worker process exited; see bench-results/logs")
        time.sleep(0.1)
        m = outputs()
        if m != n:
            n, last_change = m, time.monotonic()
        elif time.monotonic() - last_change > 1.5 and lag() == 0:
            return n, last_change, True
    return n, last_change, False


def worker_stage(
    settings: Settings,
    role: str,
    label: str,
    input_topic: str,
    lag_topics: list[str],
    batches: list[list[tuple[bytes, bytes]]],
    outputs: tuple[str, ...],
    log_dir: Path,
    timeout: float = 180,
    group: str | None = None,
    module: str | None = None,
) -> list[Measurement]:
    """Batch 0 warms the worker up (start-up, group join); each later batch is one timed run.
    ``module``: run ``python -m MODULE`` (a baseline) instead of ``oddsflow worker ROLE``.

    A run's clock starts when its records start being produced (by a producer connected during
    the warm-up) and stops at the last new output record (end offsets polled every 100 ms) once
    the group has committed all of its input.
    """
    from core.admin import create_topics

    create_topics(settings)
    out_topics = [topic_name(settings, t) for t in outputs]
    group = group or f"{settings.kafka.topic_prefix}oddsflow-{role}"
    probe_consumer = Consumer(client_config(settings, **{"group.id": group}))
    probe = lambda: end_offsets(probe_consumer, settings, out_topics)  # noqa: E731
    lag = lambda: group_lag(probe_consumer, settings, lag_topics)  # noqa: E731
    runs: list[Measurement] = []
    producer = Producer(producer_config(settings))
    try:
        with _worker(settings, role, log_dir, module) as proc:
            alive = lambda: proc.poll() is None  # noqa: E731
            produce_all(settings, input_topic, batches[0], producer)
            n, _t, ok = wait_done(probe, lag, alive, timeout + 60)
            if not ok:
                raise RuntimeError(f"{role} worker warm-up did not finish ({n} outputs)")
            for batch in batches[1:]:
                before = n
                cpu0 = proc_cpu_seconds(proc.pid) or 0.0
                t0 = time.monotonic()
                produce_all(settings, input_topic, batch, producer)
                n, last, ok = wait_done(probe, lag, alive, timeout)
                cpu = (proc_cpu_seconds(proc.pid) or 0.0) - cpu0
                runs.append(
                    Measurement(
                        label, len(batch), last - t0, cpu, proc_peak_rss_mb(proc.pid),
                        extra={"outputs": n - before, "complete": ok},
                    )
                )  # fmt: skip
    finally:
        probe_consumer.close()
    return runs


@contextmanager
def _worker(
    settings: Settings, role: str, log_dir: Path, module: str | None
) -> Iterator[subprocess.Popen[bytes]]:
    """One worker process: ``oddsflow worker ROLE``, or ``python -m MODULE`` (a baseline)."""
    if module is None:
        with worker_processes(settings, (role,), log_dir) as procs:
            yield procs[role]
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{settings.kafka.topic_prefix}{role}.log", "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=child_env(settings), stdout=logf,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def staging_worker(
    settings: Settings, n: int, reps: int, log_dir: Path, mode: str = "runtime"
) -> list[Measurement]:
    """The staging worker over Kafka, worker CPU and memory only.

    ``mode="runtime"``: the shipped worker (the transaction loop, ``oddsflow worker staging``);
    ``mode="baseline"``: the faust per-event pipeline it replaced (one awaited faust send per
    staged part, ``bench.faust_staging``), the baseline of the ratio. Both on the same
    input sizes, each on fresh topics.
    """
    from bench.faust_staging import normalized_topic as faust_normalized
    from streams.staging.worker import normalized_topic

    s = isolated_settings(settings)
    batches = [raw_envelopes(max(300, n // 4), seed=3, days_back=2)]
    batches += [raw_envelopes(n, seed=7 + r, days_back=3 + r) for r in range(reps)]
    raw = topic_name(s, raw_topic("simulator"))
    if mode == "baseline":
        return worker_stage(
            s, "faust-staging", "staging: faust per-event pipeline (baseline)", raw,
            [raw, faust_normalized(s)], batches, STAGING_OUT, log_dir,
            group=f"{s.kafka.topic_prefix}oddsflow-faust-staging",
            module="bench.faust_staging",
        )  # fmt: skip
    return worker_stage(
        s, "staging", "staging: worker over Kafka (transaction loop)", raw,
        [raw, normalized_topic(s)], batches, STAGING_OUT, log_dir,
    )  # fmt: skip


def staging_worker_baseline(
    settings: Settings, n: int, reps: int, log_dir: Path
) -> list[Measurement]:
    """The per-event baseline of :func:`staging_worker` (issue 9: each stage vs. its baseline)."""
    return staging_worker(settings, n, reps, log_dir, mode="baseline")


def staging_worker_memory(
    settings: Settings, n: int, log_dir: Path, chunk: int = 20_000
) -> list[Measurement]:
    """The staging worker's peak RSS after ``n`` raw records (issue #5: 1 million).

    Input is generated and produced in chunks while the worker runs (1M envelopes held at once
    would be the benchmark's memory, not the worker's); the de-dup state's TTL keeps the
    worker's state bounded. Separate from ``make bench``: at a few thousand records/s, 1M takes
    minutes (``oddsflow bench --staging-memory 1000000``).
    """
    from core.admin import create_topics

    s = isolated_settings(settings)
    create_topics(s)
    src = topic_name(s, raw_topic("simulator"))
    out_topics = [topic_name(s, t) for t in STAGING_OUT]
    from streams.staging.worker import normalized_topic

    lag_topics = [src, normalized_topic(s)]
    group = f"{s.kafka.topic_prefix}oddsflow-staging"
    probe_consumer = Consumer(client_config(s, **{"group.id": group}))
    probe = lambda: end_offsets(probe_consumer, s, out_topics)  # noqa: E731
    lag = lambda: group_lag(probe_consumer, s, lag_topics)  # noqa: E731
    enc = default_codec().encoder(ENVELOPE)
    producer = Producer(producer_config(s))  # one client for every chunk
    try:
        with worker_processes(s, ("staging",), log_dir) as procs:
            proc = procs["staging"]
            alive = lambda: proc.poll() is None  # noqa: E731
            cpu0 = proc_cpu_seconds(proc.pid) or 0.0
            t0 = time.monotonic()
            batch: list[tuple[bytes, bytes]] = []
            for done, (event_id, payload, fetched) in enumerate(
                simulator(n, seed=5, days_back=2).envelopes(), start=1
            ):
                batch.append((event_id.encode(), enc(envelope_record(event_id, payload, fetched))))
                if len(batch) == chunk or done == n:
                    produce_all(s, src, batch, producer)
                    batch = []
                if done == n:
                    break
            outputs, last, ok = wait_done(probe, lag, alive, 120 + n / 500)
            cpu = (proc_cpu_seconds(proc.pid) or 0.0) - cpu0
            rss = proc_peak_rss_mb(proc.pid)
    finally:
        probe_consumer.close()
    return [
        Measurement(
            f"staging worker x{n}: peak RSS", n, last - t0, cpu, rss,
            extra={"outputs": outputs, "complete": ok},
        )
    ]  # fmt: skip


def faust_ceiling(
    settings: Settings,
    n: int,
    reps: int,
    log_dir: Path,
    forward: bool = True,
    tuned: bool = False,
) -> list[Measurement]:
    """Faust alone (``bench.faust_ceiling``): raw records consumed, maybe forwarded.

    What caps the staging worker: the same app settings and batching with no processing at all.
    """
    s = isolated_settings(settings)
    src = topic_name(s, raw_topic("simulator"))
    dst = topic_name(s, "staging.odds_lines")
    from core.admin import create_topics

    create_topics(s)
    batches = [raw_envelopes(max(300, n // 4), seed=3, days_back=2)]
    batches += [raw_envelopes(n, seed=7 + r, days_back=3 + r) for r in range(reps)]
    group = f"{s.kafka.topic_prefix}oddsflow-faust-ceiling"
    probe_consumer = Consumer(client_config(s, **{"group.id": group}))
    out = lambda: end_offsets(probe_consumer, s, [dst]) if forward else 0  # noqa: E731

    def consumed() -> int:
        return end_offsets(probe_consumer, s, [src]) - group_lag(probe_consumer, s, [src])

    lag = lambda: group_lag(probe_consumer, s, [src])  # noqa: E731
    label = "faust ceiling: consume + forward" if forward else "faust ceiling: consume only"
    label += " (uvloop, 5k-record polls)" if tuned else ""
    env = settings_env(s)
    if tuned:
        from bench.faust_ceiling import TUNED_ENV

        env[TUNED_ENV] = "1"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.faust_ceiling", src, dst if forward else "-"]
    runs: list[Measurement] = []
    with open(log_dir / f"{s.kafka.topic_prefix}faust-ceiling.log", "wb") as logf:
        proc = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            alive = lambda: proc.poll() is None  # noqa: E731
            progress = out if forward else consumed
            producer = Producer(producer_config(s))  # connected before any timed run
            produce_all(s, src, batches[0], producer)
            _n, _t, ok = wait_done(progress, lag, alive, 240)
            if not ok:
                raise RuntimeError("faust ceiling warm-up did not finish")
            for batch in batches[1:]:
                cpu0 = proc_cpu_seconds(proc.pid) or 0.0
                t0 = time.monotonic()
                produce_all(s, src, batch, producer)
                _n, last, ok = wait_done(progress, lag, alive, 180)
                cpu = (proc_cpu_seconds(proc.pid) or 0.0) - cpu0
                runs.append(
                    Measurement(
                        label, len(batch), last - t0, cpu, proc_peak_rss_mb(proc.pid),
                        extra={"complete": ok},
                    )
                )  # fmt: skip
        finally:
            probe_consumer.close()
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return runs


def features_worker(settings: Settings, n: int, reps: int, log_dir: Path) -> list[Measurement]:
    """The feature worker over Kafka (one transaction per batch): staged lines in, curated
    records out. At least 60,000 lines a run (~3 s), so a run is not mostly its first fetch and
    last commit; a run ends when the group has committed its input (the same transaction as the
    outputs)."""
    s = isolated_settings(settings)
    n = max(n, 60_000)
    batches = feature_batches(n, reps + 1)
    batches[0] = batches[0][: max(2000, n // 2)]
    return worker_stage(
        s, "features", "features: worker over Kafka",
        topic_name(s, "staging.odds_lines"), [topic_name(s, "staging.odds_lines")],
        batches, CURATED_OUT, log_dir,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 8. growth


def features_growth(games: int) -> list[Measurement]:
    """The feature state over ``games`` games of a season in event-time order (games finish and
    expire, as in production); 16x the games must cost 16x the time and the same memory."""
    m = features_season(games)
    m.stage = f"growth: features x{games} games"
    m.extra["peak_state_size"] = m.extra.get("live_games_max")
    return [m]
