"""The full fault-injection suite (`make chaos`): at least 100,000 raw records, many faults.

Not collected by ``make test`` (the file name does not match ``test_*.py``); ``make chaos``
names it explicitly. The reduced form is ``tests/integration/test_chaos_reduced.py``.
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from tests.chaos.runner import FAULT_KINDS, FULL, TELEMETRY, run


async def test_full_chaos_loses_and_doubles_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    assert FULL.raw_records >= 100_000
    report = await run(FULL, service_settings, tmp_path)
    print("\n" + report.format())
    assert sum(report.raw_published.values()) == FULL.raw_records + sum(report.poison.values())
    assert report.faults == {
        **{f"kill_{r}": FULL.kills_per_role for r in ("staging", "features", "sink")},
        "broker_restart": FULL.broker_restarts,
        "broker_double_restart": FULL.broker_double_restarts,
        "postgres_restart": FULL.postgres_restarts,
    }
    assert set(report.faults) == set(FAULT_KINDS)
    # the features worker exact on what staging gave it (judged apart from staging's own result)
    assert report.features_exact, report.format()
    assert report.tables_equal, report.format()
    assert report.reconciled, report.reconciliation
    # staging restarts are exact: no staged record twice, beyond what the reference holds
    assert report.staging_exact, report.staging_copies
    data_rows = {k: n for k, n in report.rows_reference.items() if k.split(".")[1] not in TELEMETRY}
    assert {k: report.rows_chaos.get(k) for k in data_rows} == data_rows
