"""Local Kafka and Postgres for hosts without Docker (``oddsflow services up|down|status``)."""

from __future__ import annotations

from core.settings import Settings
from oddsflow.services import kafka, postgres


def up(settings: Settings) -> list[str]:
    return [kafka.start(settings), postgres.start(settings)]


def down(settings: Settings) -> list[str]:
    return [kafka.stop(settings), postgres.stop(settings)]


def status(settings: Settings) -> tuple[bool, list[str]]:
    k_ok, k = kafka.status(settings)
    p_ok, p = postgres.status(settings)
    return k_ok and p_ok, [k, p]
