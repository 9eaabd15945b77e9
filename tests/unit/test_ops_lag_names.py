"""Group names accepted by `oddsflow lag --group`."""

from __future__ import annotations

from core.settings import Settings
from oddsflow.ops.lag import full_group_name


def test_roles_and_subscriber_groups_get_the_deployment_prefix() -> None:
    s = Settings(kafka={"topic_prefix": "t1."})
    assert full_group_name(s, "sink") == "t1.oddsflow-sink"
    assert full_group_name(s, "oddsflow-staging") == "t1.oddsflow-staging"
    assert full_group_name(s, "t1.oddsflow-features") == "t1.oddsflow-features"
    assert full_group_name(s, "alerts") == "t1.alerts"
    assert full_group_name(Settings(kafka={"topic_prefix": ""}), "alerts") == "alerts"
    assert full_group_name(Settings(kafka={"topic_prefix": ""}), "features") == "oddsflow-features"
