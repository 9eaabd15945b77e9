"""Ordered, idempotent migrations for the four zones (``oddsflow db migrate``).

Each ``migrations/NNN_name.sql`` runs once, in order, in its own transaction, under an advisory
lock so two workers starting together do not race. Schema names come from
``[pipeline.zones]``: the files say ``{raw}``, ``{staging}``, ``{curated}``, ``{operational}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x0DD5F10


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def load_migrations(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    zones = settings.pipeline.zones.model_dump()
    out = []
    for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:3])
        out.append(Migration(version, path.stem[4:], path.read_text().format(**zones)))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a number in {directory}")
    return out


async def migrate(settings: Settings, conn: asyncpg.Connection | None = None) -> list[str]:
    """Apply what is missing; returns the names applied (empty when up to date)."""
    own = conn is None
    if conn is None:
        conn = await asyncpg.connect(settings.postgres.dsn)
    ops = settings.pipeline.zones.operational
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {ops};"
            f"CREATE TABLE IF NOT EXISTS {ops}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch(f"SELECT version, checksum FROM {ops}.schema_migrations")
        }
        for m in load_migrations(settings):
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    f"INSERT INTO {ops}.schema_migrations (version, name, checksum)"
                    " VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied.append(f"{m.version:03d}_{m.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
        if own:
            await conn.close()
    return applied
