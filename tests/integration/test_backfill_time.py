"""Time done right in a backfill: badly interleaved partitions change nothing, late is late.

A backfill publishes history faster than it happened, and one game's rows can sit on several raw
partitions (a whole-slate poll, a second collector, keys that are not the game). Here the real
Pinnacle sample and a synthetic season (200 games x 5 books) are spread over 4 raw partitions by
a hash of each row's event id, and published partition after partition, so one partition is
complete on the broker long before the next starts. Staging reads the partitions in record-
timestamp order, so the staged lines and every curated table must equal, value for value, the
batch reference over the same raw records in event-time order: the plain in-order de-dup, then
``tests.support.features_reference``.

Late records: an observation older than its game's newest by more than the allowed lateness
goes to ``dlq.staging`` with class ``late`` and how late; one within the lateness takes its place
in event time; the reconciliation names both and balances.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.reader import read_topic
from core.settings import Settings
from core.topics import PUBLISHED_HEADER, raw_topic, topic_name
from producers.history import pinnacle_records
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.features.worker import IDLE_FLUSH_ENV, OUTPUTS
from streams.staging.dedupe import Deduplicator
from streams.staging.processor import GAME, LINE, SPLIT, Origin, StagingProcessor
from streams.staging.reconcile import reconcile
from tests.fixtures_path import PINNACLE
from tests.helpers import curated_table, wait_for, workers
from tests.support.features_reference import reference_features

PARTITIONS = 4
ENVELOPE = "oddsflow.raw.RawEnvelope"
Raw = tuple[str, str, bytes, int]  # source, event id, envelope bytes, timestamp ms


def _raw_inputs() -> list[Raw]:
    """The Pinnacle sample (file replay) and a synthetic season (simulator), encoded."""
    encode = default_codec().encoder(ENVELOPE)
    fetched = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # when the replay read the file
    out: list[Raw] = []
    for r in pinnacle_records(PINNACLE):
        assert r.event_time is not None
        value = encode({
            "event_id": r.event_id, "source": "file", "fetched_at": fetched,
            "content_type": r.content_type, "payload": r.payload, "request": r.request,
        })  # fmt: skip
        out.append(("file", r.event_id, value, int(r.event_time.timestamp() * 1000)))
    sim = Simulator(
        seed=16, games=200, books=5, ticks=6, tick_seconds=60,
        start=datetime(2026, 5, 1, 16, 0, tzinfo=UTC),
    )  # fmt: skip
    for event_id, payload, at in sim.envelopes():
        value = encode({
            "event_id": event_id, "source": "simulator", "fetched_at": at,
            "content_type": "application/json", "payload": payload, "request": {},
        })  # fmt: skip
        out.append(("simulator", event_id, value, int(at.timestamp() * 1000)))
    return out


def _publish_badly(settings: Settings, raws: list[Raw]) -> None:
    """Each record on the partition its event id hashes to; partition 0 first, then 1, ..."""
    producer = Producer(producer_config(settings))
    published = [(PUBLISHED_HEADER, b"1764590400000")]
    by_partition: dict[int, list[Raw]] = {}
    for raw in raws:
        by_partition.setdefault(zlib.crc32(raw[1].encode()) % PARTITIONS, []).append(raw)
    for p in sorted(by_partition):
        for source, event_id, value, ts in by_partition[p]:
            producer.produce(
                topic_name(settings, raw_topic(source)), value, event_id.encode(),
                partition=p, timestamp=ts, headers=published,
            )  # fmt: skip
        producer.flush(60)
    assert producer.flush(60) == 0


def _reference(raws: list[Raw]) -> tuple[dict[str, list[dict[str, Any]]], list[Any]]:
    """The batch reference: staging in event-time order, the plain de-dup, the features."""
    processor, decode = StagingProcessor(quality_threshold=0.8), default_codec().decode
    dedupe = Deduplicator({})
    staged: dict[str, list[dict[str, Any]]] = {LINE: [], SPLIT: [], GAME: []}
    order = sorted(range(len(raws)), key=lambda i: raws[i][3])  # stable: ties keep publish order
    for n, i in enumerate(order):
        source, event_id, value, _ts = raws[i]
        origin = Origin(f"raw.odds.{source}", 0, n, event_id.encode(), 1764590400000)
        result = processor.process(origin, value, datetime(2026, 12, 2, tzinfo=UTC))
        for schema, _key, frame in result.records:
            rec = decode(frame)
            if dedupe.check(schema, rec).emit:
                staged[schema].append(rec)
    curated = reference_features(staged[LINE], staged[SPLIT], staged[GAME])
    return staged, curated


def _canon(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(repr(sorted(r.items())) for r in records)


def _diff(want: dict[str, Counter[str]], got: dict[str, Counter[str]]) -> str:
    """Per table: how many rows are missing and extra, with two of each (not every row)."""
    out = []
    for t in want:
        missing, extra = want[t] - got.get(t, Counter()), got.get(t, Counter()) - want[t]
        if missing or extra:
            out.append(
                f"{t}: {sum(missing.values())} missing, {sum(extra.values())} extra of "
                f"{sum(want[t].values())}; missing e.g. {list(missing)[:2]}; extra e.g. "
                f"{list(extra)[:2]}"
            )
    return "curated tables differ from the reference:\n" + "\n".join(out)


def _late(s: Settings) -> str:
    return f"\nreconciliation: {reconcile(s)}"


def _logs(folder: Path) -> str:
    return "".join(
        f"\n--- {log.name} (last lines)\n" + "\n".join(log.read_text().splitlines()[-15:])
        for log in sorted(folder.glob("*.log"))
    )


def _games_table(records: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """staging.games as the sink keeps it: the newest state per game (event time, event id)."""
    table: dict[str, dict[str, Any]] = {}
    for r in records:
        kept = table.get(r["game_id"])
        order = (r["event_time"], r["source_event_id"] or "")
        if kept is None or order >= (kept["event_time"], kept["source_event_id"] or ""):
            table[r["game_id"]] = r
    return {g: (r["status"], r["home_score"]) for g, r in table.items()}


async def test_a_backfill_over_badly_interleaved_partitions_equals_the_reference(
    settings: Settings, tmp_path: Path
) -> None:
    from core.admin import create_topics

    s = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"partitions": PARTITIONS})}
    )
    create_topics(s)
    raws = _raw_inputs()
    assert len(raws) > 7500
    staged, curated = _reference(raws)
    assert len(staged[LINE]) > 10_000 and len(staged[GAME]) >= 220
    _publish_badly(s, raws)
    decode = default_codec().decode

    def topic_records(logical: str) -> list[dict[str, Any]]:
        return [decode(m.value()) for m in read_topic(s, topic_name(s, logical))]

    os.environ[IDLE_FLUSH_ENV] = "3"
    try:
        with workers(s, ("staging", "features"), tmp_path / "logs") as procs:

            async def staged_lines() -> int:
                assert all(p.poll() is None for p in procs.values()), "a worker died"
                return len(topic_records("staging.odds_lines"))

            await wait_for(
                staged_lines, lambda n: n >= len(staged[LINE]), timeout=180, interval=2,
                what="the staged lines",
            )  # fmt: skip
            want = {
                t: _canon(curated_table(t, [r for tt, r in curated if tt == t])) for t in OUTPUTS
            }

            async def curated_tables() -> dict[str, Counter[str]]:
                return {t: _canon(curated_table(t, topic_records(t))) for t in OUTPUTS}

            try:
                got = await wait_for(
                    curated_tables, lambda g: g == want, timeout=180, interval=3,
                    what="curated tables equal to the reference",
                )  # fmt: skip
            except AssertionError:
                raise AssertionError(
                    _diff(want, await curated_tables()) + _late(s) + _logs(tmp_path / "logs")
                ) from None
    finally:
        os.environ.pop(IDLE_FLUSH_ENV, None)
    assert _canon(topic_records("staging.odds_lines")) == _canon(staged[LINE])
    assert _games_table(topic_records("staging.games")) == _games_table(staged[GAME])
    assert sum(got["curated.line_velocity"].values()) > 20_000
    assert sum(got["curated.steam_moves"].values()) > 0
    assert sum(got["curated.feature_vectors"].values()) > 0
    rows = {r["source"]: r for r in reconcile(s)}
    for source in ("file", "simulator"):
        assert rows[source]["balanced"] and rows[source]["raw_late"] == 0, rows[source]


async def test_late_records_are_dead_lettered_as_late_and_reconciled(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    encode = default_codec().encoder(ENVELOPE)
    start = datetime(2026, 5, 2, 16, 0, tzinfo=UTC)
    sim = Simulator(seed=4, games=1, books=3, ticks=40, tick_seconds=60, start=start)
    envelopes = list(sim.envelopes())
    topic = topic_name(s, raw_topic("simulator"))
    producer = Producer(producer_config(s))

    def send(event_id: str, payload: bytes, at: datetime, suffix: str = "") -> None:
        value = encode({
            "event_id": event_id + suffix, "source": "simulator", "fetched_at": at,
            "content_type": "application/json", "payload": payload, "request": {},
        })  # fmt: skip
        producer.produce(topic, value, b"g0", timestamp=int(at.timestamp() * 1000))

    newest = envelopes[-1][2]
    for event_id, payload, at in envelopes:
        if at < newest - timedelta(minutes=30):
            continue  # held back: these arrive last, 30 minutes late
        send(event_id, payload, at)
    late = [e for e in envelopes if e[2] < newest - timedelta(minutes=30)]
    assert late
    for event_id, payload, at in late:
        send(event_id, payload, at)
    producer.flush(30)
    dead = topic_name(s, "dlq.staging")
    decode = default_codec().decode
    with workers(s, ("staging",), tmp_path / "logs"):

        async def rows() -> dict[str, Any]:
            return next((r for r in reconcile(s) if r["source"] == "simulator"), {})

        row = await wait_for(
            rows, lambda r: r.get("balanced") and r["raw_late"] > 0, timeout=90, interval=1,
            what="a balanced reconciliation with late records",
        )  # fmt: skip
    letters = [decode(m.value()) for m in read_topic(s, dead)]
    late_letters = [d for d in letters if d["error_class"] == "late"]
    assert len(late_letters) == row["late"] > 0
    assert row["raw_late"] == len(late)  # every part of a late snapshot is late: it counts late
    assert all("allowed lateness 10.0 min" in d["reason"] for d in late_letters)
    assert all(d["original"] is None for d in late_letters)  # points at its raw record
    assert row["raw_in"] == len(envelopes)
    assert (
        row["raw_promoted"] + row["raw_unchanged"] + row["raw_late"] + row["raw_dead_lettered"]
        + row["raw_empty"] == row["raw_in"]
    )  # fmt: skip
