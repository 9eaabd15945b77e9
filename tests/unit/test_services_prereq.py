"""A missing prerequisite is one clear sentence, not a stack trace."""

from __future__ import annotations

import socket

import pytest

from core.settings import load_settings
from oddsflow.services.kafka import paths, server_properties
from oddsflow.services.prereq import PrerequisiteError, require_binary, require_free_port


def test_a_busy_port_names_the_port_and_the_setting_to_change() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PrerequisiteError) as err:
            require_free_port("127.0.0.1", port, "Kafka", "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS")
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "ODDSFLOW_KAFKA__BOOTSTRAP_SERVERS" in msg
    assert "\n" not in msg


def test_a_missing_binary_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrerequisiteError, match=r"`mvn` is not installed.*apt-get install maven"):
        require_binary("mvn", "install Maven (apt-get install maven)")


def test_broker_config_is_a_single_kraft_node_sized_for_two_cores() -> None:
    s = load_settings()
    props = dict(line.split("=", 1) for line in server_properties(s, paths(s)).splitlines() if line)
    assert props["process.roles"] == "broker,controller"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["listeners"] == f"PLAINTEXT://{s.kafka.bootstrap_servers},CONTROLLER://" + (
        f"{s.kafka.host}:{s.kafka.controller_port}"
    )
