"""What a role plugs into the transaction loop: its topics, its state and its processing.

The loop owns the clients, the transaction and the offsets; a task owns its per-partition state
and says which offsets a turn may commit (a task that holds records back, such as the staging
aligner, commits only what it has processed). Every call happens on the loop's thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from confluent_kafka import Message

#: (topic, partition)
TP = tuple[str, int]
#: A changelog entry: (key, value); value None is a deletion (tombstone).
Entry = tuple[bytes, bytes | None]


class Output(Protocol):
    """Where a task writes during a turn: everything lands in the open transaction."""

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int = -1,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: int = 0,
    ) -> None: ...

    def changelog(self, topic: str, partition: int, entries: Iterable[Entry]) -> None:
        """State changes of one partition, to its changelog partition."""
        ...

    def consumed(self, topic: str, partition: int, next_offset: int) -> None:
        """Everything of ``(topic, partition)`` before ``next_offset`` is done: commit it."""
        ...

    def behind(self, topic: str, partition: int) -> bool | None:
        """Whether the broker holds records of the partition this worker has not read yet
        (None: not known yet, no fetch answered)."""
        ...


class Task(Protocol):
    """A role's processing on the transaction loop."""

    name: str

    def input_topics(self) -> list[str]:
        """Topics to subscribe to (all with the same partition count: the range assignor then
        gives one worker the same partition number of each)."""
        ...

    def internal_topics(self) -> list[str]:
        """Topics the task writes and reads itself (repartitions); created with the inputs'
        partitions."""
        ...

    def changelog_topics(self) -> dict[str, str]:
        """Changelog topic per state name; created compacted with the inputs' partitions."""
        ...

    def assign(self, partitions: set[int], state: dict[str, dict[int, list[Entry]]]) -> None:
        """Partitions now owned, with every committed entry of their changelog partitions."""
        ...

    def revoke(self, partitions: set[int]) -> None:
        """Partitions no longer owned: forget their state (it is re-read if they return)."""
        ...

    def process(self, msgs: list[Message], now: float, out: Output) -> None:
        """One turn's records (errors already filtered out), in consumption order."""
        ...

    def tick(self, now: float, out: Output) -> None:
        """Called every loop turn after ``process``: timers, held-back records, idle work."""
        ...

    def flush(self, out: Output) -> None:
        """The worker is stopping: write what must not wait for the next timer."""
        ...

    def counters(self) -> dict[str, Any]:
        """What the task has done, for logs and health."""
        ...
