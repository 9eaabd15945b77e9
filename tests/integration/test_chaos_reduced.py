"""The fault-injection suite, reduced to run inside `make test` (the full one is `make chaos`).

A few thousand simulator records plus the whole poison corpus, published over 45 s; every worker
kind SIGKILLed, the private broker restarted (once alone, once twice within a session timeout)
and the private Postgres stopped and started while they are processed.
Every table must then equal the undisturbed reference run's and the staging zone must reconcile.
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from tests.chaos import corpus
from tests.chaos.runner import REDUCED, run


async def test_reduced_chaos_loses_and_doubles_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    report = await run(REDUCED, service_settings, tmp_path)
    print("\n" + report.format())
    assert set(report.poison) == set(corpus.KINDS)
    assert sum(report.raw_published.values()) == REDUCED.raw_records + len(corpus.KINDS) * 3
    assert report.faults == {
        "kill_staging": 1,
        "kill_features": 1,
        "kill_sink": 1,
        "broker_restart": 1,
        "broker_double_restart": 1,
        "postgres_restart": 1,
    }
    # the poison went somewhere visible: dead letters in both runs, equal row for row
    assert report.rows_reference["operational.dead_letters"] >= len(corpus.KINDS)
    assert report.rows_reference["curated.line_velocity"] > 0
    # the features worker exact on what staging gave it (judged apart from staging's own result)
    assert report.features_exact, report.format()
    assert report.tables_equal, report.format()
    assert report.reconciled, report.reconciliation
    assert report.staging_exact, report.staging_copies
