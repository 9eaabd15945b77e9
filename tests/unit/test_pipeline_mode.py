"""``[pipeline] mode`` decides which workers run and which zones the sink writes."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from core.topics import CATALOG
from oddsflow.worker import check_role, mode_roles, run_worker, sink_topics


@pytest.mark.parametrize(
    ("mode", "roles"),
    [
        ("raw_only", ("sink",)),
        ("staging_only", ("staging", "sink")),
        ("full", ("staging", "features", "sink")),
    ],
)
def test_each_mode_runs_its_roles(mode: str, roles: tuple[str, ...]) -> None:
    assert mode_roles(load_settings(pipeline={"mode": mode})) == roles


def test_the_sink_writes_only_the_zones_of_the_mode() -> None:
    raw_only = set(sink_topics(load_settings(pipeline={"mode": "raw_only"})) or ())
    staging_only = set(sink_topics(load_settings(pipeline={"mode": "staging_only"})) or ())
    assert sink_topics(load_settings(pipeline={"mode": "full"})) is None  # every topic
    assert {"raw.odds.simulator", "dlq.staging", "operational.quality"} <= raw_only
    assert not {t for t in raw_only if t.startswith(("staging.", "curated."))}
    assert raw_only < staging_only and "staging.odds_lines" in staging_only
    assert not {t for t in staging_only if t.startswith("curated.")}
    assert len(staging_only) == len([s for s in CATALOG if not s.name.startswith("curated.")])


@pytest.mark.parametrize(("mode", "role"), [("raw_only", "staging"), ("staging_only", "features")])
def test_a_role_the_mode_excludes_is_refused_naming_the_setting(mode: str, role: str) -> None:
    s = load_settings(pipeline={"mode": mode})
    with pytest.raises(SystemExit, match="ODDSFLOW_PIPELINE__MODE"):
        check_role(s, role)
    with pytest.raises(SystemExit, match=f"no {role} worker"):
        run_worker(s, role)  # refused before anything starts
    check_role(s, "sink")  # every mode runs the sink
