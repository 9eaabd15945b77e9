"""Topics and tables: creation is idempotent, and every topic's Avro fields have columns."""

from __future__ import annotations

import asyncpg
from confluent_kafka.admin import AdminClient, ConfigResource

from core.admin import create_topics
from core.kafka_config import client_config
from core.settings import Settings
from core.topics import CATALOG, DAY_MS, topic_name
from schemas.registry import default_registry
from sinks.mapping import LINEAGE
from sinks.migrate import load_migrations, migrate


async def test_migrations_are_ordered_and_idempotent(settings: Settings) -> None:
    first = await migrate(settings)
    assert first == [f"{m.version:03d}_{m.name}" for m in load_migrations(settings)]
    assert first == sorted(first)
    assert await migrate(settings) == []


async def test_every_topic_has_a_table_with_a_column_per_field(settings: Settings) -> None:
    await migrate(settings)
    conn = await asyncpg.connect(settings.postgres.dsn)
    try:
        for spec in CATALOG:
            schema = spec.schema_name(settings)
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = $2",
                schema, spec.table,
            )  # fmt: skip
            columns = {r["column_name"] for r in rows}
            fields = {f["name"] for f in default_registry().get(spec.schema).raw["fields"]}
            missing = (fields | set(LINEAGE)) - columns
            assert not missing, f"{schema}.{spec.table} lacks {sorted(missing)}"
            pk = await conn.fetchval(
                "SELECT array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum))"
                " FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary",
                f"{schema}.{spec.table}",
            )
            assert tuple(pk) == spec.key_columns, spec.name
    finally:
        await conn.close()


def test_topic_creation_is_idempotent_with_retention_from_config(settings: Settings) -> None:
    first = create_topics(settings)
    assert sum(1 for line in first if line.startswith("created ")) == len(CATALOG)
    assert create_topics(settings) == [f"{len(CATALOG)} topics already existed"]
    admin = AdminClient(client_config(settings))
    raw = topic_name(settings, "raw.odds.odds_api")  # live: kept by time (history: by size)
    curated = topic_name(settings, "curated.steam_moves")
    res = admin.describe_configs([ConfigResource("topic", raw), ConfigResource("topic", curated)])
    configs = {r.name: f.result() for r, f in res.items()}
    days = settings.pipeline.retention.raw_retention_days
    assert configs[raw]["retention.ms"].value == str(days * DAY_MS)
    assert configs[curated]["retention.ms"].value == "-1"
    md = admin.list_topics(timeout=10)
    assert len(md.topics[raw].partitions) == settings.kafka.partitions
