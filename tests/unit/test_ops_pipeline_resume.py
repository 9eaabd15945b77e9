"""``pipeline run`` rides out a broker that stops answering for a while, and a run that cannot go
on says how to resume."""

from __future__ import annotations

from typing import Any

import pytest

from core.offsets import KafkaUnavailable
from core.settings import load_settings
from oddsflow.errors import CommandError
from oddsflow.ops import pipeline


def test_a_broker_that_stops_answering_for_a_while_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[Any] = [
        ({"sink": 1}, True),
        KafkaUnavailable("offsets of group oddsflow-sink: failed to parse response"),
        KafkaUnavailable("offsets of group oddsflow-sink: failed to parse response"),
        ({"sink": 2}, True),
    ]

    def snapshot(_settings: Any, _roles: Any) -> tuple[dict, bool]:
        answer = answers.pop(0) if answers else ({"sink": 2}, True)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(pipeline, "_snapshot", snapshot)
    monkeypatch.setattr(pipeline.time, "sleep", lambda _s: None)
    took = pipeline.wait_until_quiet(load_settings(), ("sink",), 0.0, 60.0, lambda: None)
    assert took >= 0 and not answers
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # said once when it stopped answering, once when it came back
    assert "did not answer" in err[0] and "failed to parse response" in err[0]
    assert err[1] == "pipeline run: the broker answers again"


def test_a_broker_gone_for_good_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 50))

    def snapshot(_settings: Any, _roles: Any) -> tuple[dict, bool]:
        raise KafkaUnavailable("listing topics: Local: Broker transport failure")

    monkeypatch.setattr(pipeline, "_snapshot", snapshot)
    monkeypatch.setattr(pipeline.time, "sleep", lambda _s: None)
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(KafkaUnavailable, match="Broker transport failure"):
        pipeline.wait_until_quiet(load_settings(), ("sink",), 5.0, 3600.0, lambda: None)


@pytest.mark.parametrize(
    ("argv", "again"),
    [
        ({"full": True, "zone": None}, "oddsflow pipeline run --full"),
        ({"full": False, "zone": "staging"}, "oddsflow pipeline run --zone staging"),
    ],
)
def test_a_run_that_cannot_go_on_says_how_to_resume(
    monkeypatch: pytest.MonkeyPatch, argv: dict[str, Any], again: str
) -> None:
    def run(*_a: Any) -> int:
        raise KafkaUnavailable("offsets of group oddsflow-staging: failed to parse response")

    monkeypatch.setattr(pipeline, "_run_zone", run)
    import argparse

    args = argparse.Namespace(quiet=5.0, timeout=60.0, **argv)
    settings = load_settings(kafka={"bootstrap_servers": "broker:9092"})
    with pytest.raises(CommandError) as err:
        pipeline.run_run(settings, args)
    text = str(err.value)
    assert text.startswith("Kafka at broker:9092: offsets of group oddsflow-staging")
    assert text.endswith(f"run `{again}` to resume from there")
