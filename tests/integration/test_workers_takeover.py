"""Two ``oddsflow worker staging`` processes share the partitions; one is SIGKILLed mid-stream and
the other takes its partitions over: the staging topic ends with every expected line exactly once.

The expectation is the pure staging code over the same input (``test_staging_crash._expected``).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from core.offsets import admin_client, result_of
from core.settings import Settings
from core.topics import topic_name
from producers.publisher import Publisher
from producers.simulator import Simulator
from schemas.codec import default_codec
from streams.staging.worker import normalized_topic
from tests.helpers import wait_for
from tests.integration.test_staging_crash import START, _expected, _staged, _WrittenLines
from tests.integration.test_workers_lifecycle import spawn


def members(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    """The staging group's live members and the input partitions each is assigned."""
    group = f"{settings.kafka.topic_prefix}oddsflow-staging"
    inputs = {topic_name(settings, "raw.odds.simulator"), normalized_topic(settings)}
    admin = admin_client(settings)
    fut = admin.describe_consumer_groups([group], request_timeout=10)[group]
    d = result_of(fut, "describe", 10)
    return {
        m.member_id: {
            (tp.topic, tp.partition)
            for tp in (m.assignment.topic_partitions if m.assignment else [])
            if tp.topic in inputs
        }
        for m in d.members
    }


async def test_two_staging_workers_share_partitions_and_survive_a_sigkill(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    # enough input that the (batched) worker is still busy a third of the way through
    sim = Simulator(seed=8, games=6, books=4, ticks=1000, tick_seconds=30, start=START)
    encode = default_codec().encoder("oddsflow.raw.RawEnvelope")
    envelopes = []
    for event_id, payload, fetched in sim.envelopes():
        envelopes.append((sim.key_of(event_id), encode({
            "event_id": event_id, "source": "simulator", "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": {},
        })))  # fmt: skip
    expected = _expected(sim, envelopes)
    total = sum(expected.values())
    assert total > 200

    async def staged_count() -> int:
        return sum(_staged(s).values())

    with (
        spawn(s, "staging", tmp_path / "a.log") as a,
        spawn(s, "staging", tmp_path / "b.log") as b,
    ):

        async def described() -> dict[str, set[tuple[str, int]]]:
            return members(s)

        # both processes are in the group and each owns input partitions
        shared = await wait_for(
            described, lambda m: len(m) == 2 and all(m.values()), timeout=90, what="two members"
        )
        owned = list(shared.values())
        assert not owned[0] & owned[1], "a partition assigned twice"
        n_inputs = 2 * s.kafka.partitions  # the raw topic's and the repartition topic's
        assert len(owned[0] | owned[1]) == n_inputs

        done = threading.Event()

        def publish() -> None:
            """The input arrives over ~20 s: the kill lands while it flows."""
            pub = Publisher(s, "simulator")
            items = list(sim.envelopes())
            step = len(items) // 80 + 1
            for i in range(0, len(items), step):
                for event_id, payload, fetched in items[i : i + step]:
                    pub.publish(event_id, payload, fetched, key=sim.key_of(event_id))
                pub.flush()
                time.sleep(0.25)
            assert pub.close().acked == len(envelopes)
            done.set()

        feeder = threading.Thread(target=publish, daemon=True)
        feeder.start()

        written = _WrittenLines(s)  # end offsets: cheap to poll fast, so the kill lands early
        try:
            await wait_for(
                written, lambda n: n >= total // 3, timeout=90, interval=0.05, what="a third"
            )
        finally:
            written.close()
        assert not done.is_set(), "the input had all arrived before the kill"
        a.send_signal(signal.SIGKILL)
        a.wait()
        assert await staged_count() < total, "killed after the work was done: no takeover"
        feeder.join(timeout=120)
        assert done.is_set()
        # the survivor is alone in the group with every input partition
        alone = await wait_for(
            described, lambda m: len(m) == 1 and len(next(iter(m.values()))) == n_inputs,
            timeout=60,
            what="the survivor owning every partition",
        )  # fmt: skip
        assert len(alone) == 1
        await wait_for(staged_count, lambda n: n >= total, timeout=120, what="all staged lines")
        assert b.poll() is None, "the survivor died"
    got = _staged(s)
    assert {k: n for k, n in got.items() if n > 1} == {}, "a line was emitted twice"
    assert got == expected
