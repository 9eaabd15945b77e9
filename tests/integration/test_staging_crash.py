"""A staging worker SIGKILLed at random moments neither loses nor re-emits a promoted line.

Each turn of the staging worker is one Kafka transaction (outputs, de-dup state changelog and
input offsets together, DESIGN.md "Runtime"), so a killed worker's successor resumes from exactly
what was committed: the staging topic ends with every expected line once. The input keeps
arriving while the worker is killed three times, so every kill lands mid-stream however fast
the worker is.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from core.kafka_config import consumer_config
from core.settings import Settings
from core.topics import topic_name
from producers.publisher import Publisher
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.dedupe import Deduplicator
from streams.staging.processor import LINE, Origin, StagingProcessor
from tests.helpers import wait_for, workers

START = datetime(2026, 4, 2, 17, 0, tzinfo=UTC)


def _identity(rec: dict) -> tuple:
    return (rec["game_id"], rec["book"], rec["market"], rec["side"], rec["event_time"],
            rec["price_american"], rec["line"])  # fmt: skip


def _expected(sim: Simulator, envelopes: list[tuple[str, bytes]]) -> Counter:
    """The same input through the pure staging code, one game's payloads in publish order."""
    processor, dedupe = StagingProcessor(), Deduplicator({})
    codec = default_codec()
    out: Counter = Counter()
    for i, (_key, value) in enumerate(envelopes):
        result = processor.process(Origin("raw.odds.simulator", 0, i, None), value)
        assert not result.dead
        for schema, _k, v in result.records:
            rec = codec.decode(v)
            if dedupe.check(schema, rec).emit and schema == LINE:
                out[_identity(rec)] += 1
    return out


def _staged(settings: Settings) -> Counter:
    """Every committed record of staging.odds_lines."""
    topic = topic_name(settings, "staging.odds_lines")
    consumer = Consumer(consumer_config(settings, f"{settings.kafka.topic_prefix}check"))
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp)[1] for tp in parts}
        consumer.assign(parts)
        out: Counter = Counter()
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(parts):
            msg = consumer.poll(2.0)
            if msg is None:
                break  # transaction markers occupy the last offsets: nothing more to read
            if msg.error():
                continue
            out[_identity(default_codec().decode(msg.value()))] += 1
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return out
    finally:
        consumer.close()


class _WrittenLines:
    """Lines written so far (end offsets, incl. open transactions), from one long-lived consumer.

    A fresh consumer per probe costs a connect and a metadata round trip; reusing one keeps the
    probe at a few milliseconds, so a kill lands close to its target even on a quiet machine.
    """

    def __init__(self, settings: Settings) -> None:
        self._topic = topic_name(settings, "staging.odds_lines")
        self._consumer = Consumer(consumer_config(settings, f"{settings.kafka.topic_prefix}check"))
        md = self._consumer.list_topics(self._topic, timeout=10)
        self._parts = [TopicPartition(self._topic, p) for p in md.topics[self._topic].partitions]

    async def __call__(self) -> int:
        return sum(self._consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in self._parts)

    def close(self) -> None:
        self._consumer.close()


async def test_sigkilled_staging_worker_loses_and_duplicates_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    sim = Simulator(seed=21, games=3, books=4, ticks=3000, tick_seconds=10, start=START)
    codec_enc = default_codec().encoder("oddsflow.raw.RawEnvelope")
    envelopes, keyed = [], []
    for event_id, payload, fetched in sim.envelopes():
        game_key = sim.key_of(event_id)  # all books of one game on one partition, in order
        keyed.append((event_id, payload, fetched, game_key))
        envelopes.append((game_key, codec_enc({
            "event_id": event_id, "source": "simulator", "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": {},
        })))  # fmt: skip
    expected = _expected(sim, envelopes)
    assert sum(expected.values()) > 100
    published = threading.Event()

    def publish() -> None:
        """The input arrives over ~30 s, in 120 portions: the worker is killed while it flows."""
        pub = Publisher(s, "simulator")
        step = len(keyed) // 120 + 1
        for i in range(0, len(keyed), step):
            for event_id, payload, fetched, game_key in keyed[i : i + step]:
                pub.publish(event_id, payload, fetched, key=game_key)
            pub.flush()
            time.sleep(0.25)
        assert pub.close().acked == 3 * 4 * 3000
        published.set()

    async def staged_count() -> int:
        return sum(_staged(s).values())

    written = _WrittenLines(s)
    feeder = threading.Thread(target=publish, daemon=True)
    feeder.start()
    rng = random.Random(5)
    kills = 0
    mid_stream = []  # whether input was still arriving at each kill
    for _ in range(3):
        with workers(s, ("staging",), tmp_path / f"run{kills}") as procs:
            before = await written()
            target = before + rng.randint(50, 400)
            await wait_for(written, lambda n, t=target: n >= t, timeout=90, interval=0.05,
                           what=f"{target} staged lines")  # fmt: skip
            mid_stream.append(not published.is_set())
            procs["staging"].send_signal(signal.SIGKILL)
            procs["staging"].wait()
            kills += 1
    assert sum(mid_stream) >= 2, "the kills came after the input had all arrived"
    written.close()
    feeder.join(timeout=120)
    assert published.is_set()
    with workers(s, ("staging",), tmp_path / "final"):
        await wait_for(
            staged_count, lambda n: n >= sum(expected.values()), timeout=120,
            what="all staged lines",
        )  # fmt: skip
    got = _staged(s)
    assert kills == 3
    assert {k: n for k, n in got.items() if n > 1} == {}, "a line was emitted twice"
    assert got == expected
