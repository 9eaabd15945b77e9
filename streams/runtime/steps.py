"""A task's wiring, declared once: its steps, each step's input and output topics and its state.

The declaration is what both the dispatch and the description read, so the two cannot drift:
``Steps.dispatch`` routes a turn's records to the steps by topic (one dict lookup a record, each
step's records in one list, then each step's handler once, in declared order), and
``Steps.describe`` is what ``oddsflow topology`` prints (source topics → steps → output topics),
the way a faust agent or a Quix StreamingDataFrame reads::

    self.steps = Steps(
        Step("normalize", raw_topics, (repartition, dlq), self._normalize, every_turn=True),
        Step("dedupe", (repartition,), staged_topics, self._dedupe, state="dedupe"),
    )

    def process(self, msgs, now, out):
        self.steps.dispatch(msgs, now, out)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from streams.runtime.task import Output

#: What a step does with its records of a turn: ``handler(msgs, now, out)``.
Handler = Callable[[list[Message], float, Output], None]


@dataclass(frozen=True)
class Step:
    """One step of a task: the topics it reads, the topics it writes, the state it keeps."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    handler: Handler
    #: The name of the state table the step keeps (its changelog is the task's), or None.
    state: str | None = None
    #: Called on every dispatch, even without records of its own: a step that holds records
    #: back between turns (the staging aligner) works them off as soon as it may.
    every_turn: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "state": self.state,
        }


class Steps:
    """A task's steps in dispatch order; every input topic belongs to exactly one of them."""

    def __init__(self, *steps: Step) -> None:
        if not steps:
            raise ValueError("a task has at least one step")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names repeat: {names}")
        self.steps = steps
        self._index: dict[str, int] = {}  # input topic -> its step's position
        for i, step in enumerate(steps):
            if not step.inputs:
                raise ValueError(f"step {step.name} reads no topic")
            for topic in step.inputs:
                if topic in self._index:
                    other = steps[self._index[topic]].name
                    raise ValueError(f"{topic} is an input of both {other} and {step.name}")
                self._index[topic] = i
        self._only = steps[0] if len(steps) == 1 else None

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def step_of(self, topic: str) -> Step:
        """The step that reads ``topic`` (KeyError: none does)."""
        return self.steps[self._index[topic]]

    def dispatch(self, msgs: list[Message], now: float, out: Output) -> None:
        """One turn's records to their steps: each step's handler once, in declared order, with
        its records in consumption order (a step without records is skipped unless it runs
        ``every_turn``). The loop only hands over records of ``inputs()``; with several steps, a
        record of a topic no step reads is a KeyError, with one step it is the handler's."""
        only = self._only
        if only is not None:  # one step: the turn's records are its records, as they came
            if msgs or only.every_turn:
                only.handler(msgs, now, out)
            return
        buckets: list[list[Message]] = [[] for _ in self.steps]
        append = {topic: buckets[i].append for topic, i in self._index.items()}
        for msg in msgs:
            append[msg.topic()](msg)
        for step, bucket in zip(self.steps, buckets, strict=True):
            if bucket or step.every_turn:
                step.handler(bucket, now, out)

    # ------------------------------------------------------------------ description

    def inputs(self) -> list[str]:
        """Every input topic, in declared order (what the task subscribes to)."""
        return list(self._index)

    def states(self) -> list[str]:
        """The state tables the steps keep, in declared order."""
        return [s.state for s in self.steps if s.state is not None]

    def outputs(self) -> list[str]:
        """Every output topic, once each, in declared order."""
        return list(dict.fromkeys(t for s in self.steps for t in s.outputs))

    def describe(
        self, group: str, changelogs: dict[str, str], internal: Iterable[str] = ()
    ) -> dict[str, Any]:
        """What the task consumes, writes and keeps, for ``oddsflow topology``: its steps with
        their inputs and outputs; ``inputs`` and ``outputs`` are the task's own, without the
        ``internal`` topics it writes and reads itself."""
        own = list(internal)
        return {
            "group": group,
            "inputs": [t for t in self.inputs() if t not in own],
            "steps": [s.describe() for s in self.steps],
            "internal": own,
            "outputs": [t for t in self.outputs() if t not in own],
            "tables": [{"name": s, "changelog": changelogs[s]} for s in self.states()],
        }
