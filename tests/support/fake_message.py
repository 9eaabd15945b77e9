"""A stand-in for ``confluent_kafka.Message`` in pure-logic tests (routing, alignment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeMessage:
    """What the stream runtime asks of a consumed record; ``ts`` defaults to the offset."""

    _topic: str
    _partition: int = 0
    _offset: int = 0
    _value: bytes | None = None
    ts: int | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        """(TIMESTAMP_CREATE_TIME, ms)."""
        return (1, self._offset if self.ts is None else self.ts)
