"""Sink logic that needs no broker or database: mapping rows, retry classification, retention."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from asyncpg.exceptions import _base as pg_base

from bench.sink_rate import odds_line
from core.settings import Settings
from core.topics import BY_NAME, CATALOG, Zone
from sinks.connector import SinkConnector, _Batch, _Outcome, is_retryable
from sinks.data_status import ZONES
from sinks.mapping import LINEAGE, mapping_for
from sinks.retention import table_retention


def test_fast_row_maker_builds_the_same_row_as_the_generic_one() -> None:
    m = mapping_for(Settings(), BY_NAME["staging.odds_lines"])
    rec = odds_line(7)
    fast = m.row_maker()
    assert fast is not m.row  # no structured field: the itemgetter path
    assert fast(rec, "t", 1, 42) == m.row(rec, "t", 1, 42)
    assert fast(rec, "t", 1, 42)[-3:] == ("t", 1, 42)
    assert m.columns[-3:] == LINEAGE


def test_structured_fields_keep_the_converting_row_maker() -> None:
    m = mapping_for(Settings(), BY_NAME["raw.odds.simulator"])
    assert m.row_maker() == m.row  # request is a map: stored as jsonb text


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.ConnectionDoesNotExistError("closed"), True),
        (asyncpg.AdminShutdownError("shutdown"), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (pg_base.InterfaceError("connection is closed"), True),
        # Bad rows must never be retried forever (asyncpg's DataError is an InterfaceError).
        (pg_base.DataError("invalid input for query argument"), False),
        (asyncpg.CharacterNotInRepertoireError("0x00"), False),
        (asyncpg.CheckViolationError("check"), False),
        (asyncpg.UndefinedTableError("no table"), False),
    ],
)
def test_only_outages_are_retried(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


def test_fence_drops_records_below_the_stored_position_only() -> None:
    batch = _Batch(first_offsets={("t", 0): 10, ("t", 1): 5})
    rows = [("a", "t", 0, o) for o in range(10, 15)] + [("b", "t", 1, o) for o in range(5, 8)]
    out = _Outcome()
    kept = SinkConnector._fence(rows, {("t", 0): 12, ("t", 1): 5}, batch, out)
    assert [(r[2], r[3]) for r in kept] == [(0, 12), (0, 13), (0, 14), (1, 5), (1, 6), (1, 7)]
    assert out.fenced == 2
    untouched = SinkConnector._fence(rows, {("t", 0): 10}, batch, _Outcome())
    assert untouched is rows


def test_every_sink_table_has_a_retention_rule_by_arrival_time() -> None:
    s = Settings()
    rules = {r.table: r for r in table_retention(s)}
    assert len(rules) == len({(c.zone, c.table) for c in CATALOG})
    assert {r.time_column for r in rules.values()} == {"loaded_at"}
    assert rules["raw_data.odds_envelopes"].days == 90
    assert rules["core_betting.odds_lines"].days == 365
    assert rules["analytics.consensus"].days == -1
    assert rules["operational.dead_letters"].days == 365
    for rule in rules.values():
        assert rule.zone in Zone


def test_status_zones_cover_the_command_line_choices() -> None:
    assert ZONES == ("raw", "staging", "curated", "operational", "all")
    from sinks.data_status import data_status_async

    with pytest.raises(ValueError, match="zone must be one of"):
        asyncio.run(data_status_async(Settings(), "nowhere"))
