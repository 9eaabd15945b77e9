"""`pipeline health` with no broker at the address: fast, one line, non-zero."""

from __future__ import annotations

import argparse
import socket
import time

import pytest

from core.settings import Settings
from oddsflow.ops.health import add_health_arguments, add_status_arguments, run_health, run_status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings() -> Settings:
    return Settings(kafka={"bootstrap_servers": f"127.0.0.1:{_closed_port()}"})


def test_health_fails_fast_in_one_line_when_the_broker_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = _settings()
    parser = argparse.ArgumentParser()
    add_health_arguments(parser)
    started = time.monotonic()
    assert run_health(s, parser.parse_args(["--timeout", "2"])) == 1
    assert time.monotonic() - started < 5
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(
        f"UNHEALTHY: broker: Kafka at {s.kafka.bootstrap_servers} did not answer within 2s"
    )
    assert err == ""  # librdkafka's connection retries stay off the terminal


def test_status_says_the_broker_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    s = _settings()
    parser = argparse.ArgumentParser()
    add_status_arguments(parser)
    assert run_status(s, parser.parse_args([])) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"oddsflow pipeline status: Kafka at {s.kafka.bootstrap_servers} did not answer"
    )
    assert len(err.splitlines()) == 1
