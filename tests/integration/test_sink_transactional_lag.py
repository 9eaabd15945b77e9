"""The sink's group reaches lag 0 on topics written in transactions (the features worker's).

Each transaction ends with a commit marker at the offset after its last record; the consumer skips
it and never returns it. A sink that told Kafka only ``last offset + 1`` kept a lag of one per
partition for ever, so lag monitoring (and the chaos suite's "drained") never saw it finish.
"""

from __future__ import annotations

import asyncio

import asyncpg
from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.offsets import admin_client, committed_offsets, end_offsets
from core.settings import Settings
from core.topics import topic_name
from schemas.codec import default_codec
from sinks.connector import SinkConnector
from tests.integration.test_sink_upsert_newest import game

TOPIC = "staging.games"


def produce_in_transactions(s: Settings, batches: int, per_batch: int) -> None:
    encode = default_codec().encoder("oddsflow.staging.Game")
    p = Producer(producer_config(s, **{"transactional.id": f"{s.kafka.topic_prefix}txn-test"}))
    p.init_transactions(30)
    for b in range(batches):
        p.begin_transaction()
        for i in range(per_batch):
            rec = game(f"g{b}-{i}", 10 + b, "scheduled", None)
            p.produce(topic_name(s, TOPIC), key=rec["game_id"].encode(), value=encode(rec))
        p.commit_transaction(30)


async def test_sink_lag_reaches_zero_past_transaction_markers(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    await asyncio.to_thread(produce_in_transactions, s, 3, 5)
    connector = SinkConnector(s, topics=[TOPIC])
    stats = await connector.run(asyncio.Event(), idle_exit=2.0)
    assert stats.consumed == 15
    conn = await asyncpg.connect(s.postgres.dsn)
    try:
        table = f"{s.pipeline.zones.staging}.games"
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 15
    finally:
        await conn.close()
    admin = admin_client(s)
    name = topic_name(s, TOPIC)
    committed = {tp: o for tp, o in committed_offsets(admin, connector.group).items()
                 if tp[0] == name}  # fmt: skip
    ends = end_offsets(admin, [(name, p) for p in range(s.kafka.partitions)])
    # 15 records + 3 markers per partition written to: the ends are past the last records
    assert sum(ends.values()) > 15
    assert committed == {tp: end for tp, end in ends.items() if end > 0}
