"""Which workers a one-off run needs, and what pipeline.mode allows."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from oddsflow.errors import UsageError
from oddsflow.ops.pipeline import roles_for


@pytest.mark.parametrize(
    ("mode", "zone", "roles"),
    [
        ("full", None, ("staging", "features", "sink")),
        ("full", "raw", ("sink",)),
        ("full", "staging", ("staging", "sink")),
        ("full", "curated", ("features", "sink")),
        ("staging_only", None, ("staging", "sink")),
        ("raw_only", None, ("sink",)),
    ],
)
def test_roles_per_zone_and_mode(mode: str, zone: str | None, roles: tuple[str, ...]) -> None:
    s = load_settings(pipeline={"mode": mode})
    assert roles_for(s, zone) == roles


def test_a_zone_the_mode_excludes_is_refused_with_the_setting_to_change() -> None:
    s = load_settings(pipeline={"mode": "raw_only"})
    with pytest.raises(UsageError, match="ODDSFLOW_PIPELINE__MODE"):
        roles_for(s, "curated")
