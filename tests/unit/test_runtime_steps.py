"""A task's steps are declared once: the dispatch routes by them and ``describe`` prints them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from core.settings import Settings
from streams.features.worker import FeaturesTask
from streams.features.worker import describe as describe_features
from streams.runtime.steps import Step, Steps
from streams.runtime.task import Entry
from streams.staging.worker import StagingTask
from streams.staging.worker import describe as describe_staging
from tests.support.fake_message import FakeMessage


class FakeOutput:
    """Records what a turn writes."""

    def __init__(self) -> None:
        self.produced: list[tuple[str, int]] = []
        self.consumed_: list[tuple[str, int, int]] = []

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int = -1,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: int = 0,
    ) -> None:
        self.produced.append((topic, partition))

    def changelog(self, topic: str, partition: int, entries: Iterable[Entry]) -> None:
        pass

    def consumed(self, topic: str, partition: int, next_offset: int) -> None:
        self.consumed_.append((topic, partition, next_offset))

    def behind(self, topic: str, partition: int, *_: Any) -> bool | None:
        return False


def recording(steps: Steps) -> tuple[Steps, list[tuple[str, list[str]]]]:
    """The same wiring with handlers that write down (step, the topics of its records)."""
    calls: list[tuple[str, list[str]]] = []

    def handler(name: str) -> Any:
        return lambda msgs, now, out: calls.append((name, [m.topic() for m in msgs]))

    return Steps(*(replace(s, handler=handler(s.name)) for s in steps)), calls


@pytest.fixture
def staging() -> StagingTask:
    return StagingTask(Settings(kafka={"topic_prefix": "p1."}))


def test_staging_describe_is_its_declared_steps(staging: StagingTask) -> None:
    d = describe_staging(Settings(kafka={"topic_prefix": "p1."}))
    assert [(s["name"], s["inputs"], s["outputs"]) for s in d["steps"]] == [
        (s.name, list(s.inputs), list(s.outputs)) for s in staging.steps
    ]
    normalize, dedupe, quality = staging.steps
    assert (normalize.name, dedupe.name, quality.name) == ("normalize", "dedupe", "quality")
    assert set(normalize.inputs) == set(staging.raw_topics)
    assert set(normalize.outputs) == {staging.repartition, staging.dlq, staging.deltas}
    assert dedupe.inputs == (staging.repartition,)
    assert set(dedupe.outputs) == {
        "p1.staging.odds_lines",
        "p1.staging.betting_splits",
        "p1.staging.games",
        "p1.dlq.staging",
        staging.deltas,  # the decision counts tick() sends
    }
    assert (quality.inputs, quality.outputs) == ((staging.deltas,), ("p1.operational.quality",))
    # the worker's own topics are not its inputs or outputs; the tables are the steps' states
    assert d["inputs"] == list(staging.raw_topics)
    assert set(d["outputs"]) == set(dedupe.outputs) - {staging.deltas} | {"p1.operational.quality"}
    assert d["tables"] == [
        {"name": "dedupe", "changelog": "p1.oddsflow-staging-dedupe-changelog"},
        {"name": "quality", "changelog": "p1.oddsflow-staging-quality-changelog"},
    ]
    assert staging.changelog_topics() == {t["name"]: t["changelog"] for t in d["tables"]}
    # the internal topics are what one step writes and another reads
    step_outputs = {t for s in staging.steps for t in s.outputs}
    assert set(d["internal"]) == set(staging.input_topics()) & step_outputs
    # the real handlers, in the order the module reads
    assert [s.handler for s in staging.steps] == [
        staging._normalize,
        staging._dedupe,
        staging._quality,
    ]


def test_every_input_topic_of_staging_goes_to_exactly_one_step(staging: StagingTask) -> None:
    inputs = staging.input_topics()
    assert len(inputs) == len(set(inputs))
    assert set(inputs) == {*staging.raw_topics, staging.repartition, staging.deltas}
    for topic in inputs:
        assert [s.name for s in staging.steps if topic in s.inputs] == [
            staging.steps.step_of(topic).name
        ]


def test_routing_calls_each_handler_once_in_declared_order(staging: StagingTask) -> None:
    steps, calls = recording(staging.steps)
    raw = sorted(staging.raw_topics)
    msgs: list[Any] = [
        FakeMessage(staging.deltas, 0, 7),
        FakeMessage(raw[0], 1, 1),
        FakeMessage(staging.repartition, 2, 3),
        FakeMessage(raw[1], 1, 2),
        FakeMessage(staging.deltas, 0, 8),
        FakeMessage(raw[0], 1, 2),
    ]
    steps.dispatch(msgs, 1.0, FakeOutput())
    assert calls == [
        ("normalize", [raw[0], raw[1], raw[0]]),  # consumption order within a step
        ("dedupe", [staging.repartition]),
        ("quality", [staging.deltas, staging.deltas]),
    ]
    calls.clear()  # a step without records is skipped, but normalize runs every turn
    steps.dispatch([FakeMessage(staging.deltas)], 2.0, FakeOutput())
    assert calls == [("normalize", []), ("quality", [staging.deltas])]


def test_process_dispatches_to_the_real_handlers(staging: StagingTask) -> None:
    """Records of partitions this worker does not own: each handler only marks them consumed,
    so what is consumed, in which order, shows which handler took which record."""
    out = FakeOutput()
    msgs: list[Any] = [
        FakeMessage(staging.deltas, 3, 10, b"x"),
        FakeMessage(staging.repartition, 4, 20, b"x"),
        FakeMessage(staging.repartition, 5, 30, b"x"),
    ]
    staging.process(msgs, 1.0, out)
    assert out.consumed_ == [
        (staging.repartition, 4, 21),  # dedupe first: declared before quality
        (staging.repartition, 5, 31),
        (staging.deltas, 3, 11),
    ]
    assert staging.stats["skipped"] == 2 and not out.produced


def test_a_topic_of_two_steps_or_of_none_is_a_wiring_error() -> None:
    def noop(msgs: Any, now: float, out: Any) -> None:
        pass

    with pytest.raises(ValueError, match="input of both a and b"):
        Steps(Step("a", ("t",), (), noop), Step("b", ("t",), (), noop))
    steps = Steps(Step("a", ("t",), (), noop), Step("b", ("u",), (), noop))
    with pytest.raises(KeyError):
        steps.dispatch([FakeMessage("v")], 0.0, FakeOutput())  # type: ignore[list-item]


def test_features_describes_itself_the_same_way() -> None:
    s = Settings(kafka={"topic_prefix": "p1."})
    task = FeaturesTask(s)
    (step,) = task.steps
    d = describe_features(s)
    assert d["steps"] == [
        {
            "name": "features",
            "inputs": ["p1.staging.odds_lines", "p1.staging.betting_splits", "p1.staging.games"],
            "outputs": list(step.outputs),
            "state": "features-state",
        }
    ]
    assert step.outputs[-1] == "p1.operational.pipeline_events"
    assert d["inputs"] == task.input_topics() == list(step.inputs)
    assert d["outputs"] == list(step.outputs)
    assert d["tables"] == [
        {"name": "features-state", "changelog": "p1.oddsflow-features-features-state-changelog"}
    ]
    assert step.handler == task._features
