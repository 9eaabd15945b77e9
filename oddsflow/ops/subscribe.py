"""Downstream subscribers: typed records from any catalog topic, as an async iterator.

```python
from oddsflow.ops.subscribe import subscribe
from schemas.models import SteamMove

async for steam in subscribe("curated.steam_moves", group="steam-alerts"):
    assert isinstance(steam, SteamMove)
    print(steam.game_id, steam.direction, steam.magnitude, steam.books)
```

- ``topic`` is the catalog name; the configured topic prefix is applied, and the record type is
  the model of the topic's schema (``schemas.models.model_for``), so the loop body is typed.
- ``group`` makes progress durable: a record's offset is committed once the loop body asks for
  the next record or leaves the loop (``break``); a process that dies mid-body gets that record
  again (at-least-once). The group name gets the topic prefix too. Without a group nothing is
  committed.
- A new group (or no group) starts at the end of the topic; ``from_beginning=True`` starts at
  the oldest record kept instead.
- Only committed transactions are read (the stream agents write with exactly-once).
- Records that do not decode are logged and skipped (``skip_undecodable=False`` raises instead).
- ``idle_timeout`` ends the iteration after that many seconds without a record; ``stop`` (an
  :class:`asyncio.Event`) ends it when set. Leaving the loop early closes the consumer; use
  ``contextlib.aclosing`` to have that happen at once rather than when collected.

:func:`subscribe_records` yields :class:`Received` (the model plus topic, partition, offset, key
and broker timestamp) for callers that need the position too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from core.argtypes import non_negative_int, positive_float
from core.kafka_config import consumer_config
from core.settings import Settings, get_settings
from core.topics import spec, topic_name
from oddsflow.errors import UsageError
from oddsflow.jsonout import dumps, iso, plain
from schemas.codec import DecodeError, default_codec
from schemas.models import AvroModel, model_for

log = logging.getLogger("oddsflow.subscribe")


@dataclass(frozen=True)
class Received:
    """One decoded record and where it came from."""

    value: AvroModel
    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: datetime | None  # the broker's record timestamp

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "timestamp": iso(self.timestamp),
            "value": plain(self.value),
        }


async def subscribe_records(
    topic: str,
    group: str | None = None,
    *,
    settings: Settings | None = None,
    from_beginning: bool = False,
    idle_timeout: float | None = None,
    stop: asyncio.Event | None = None,
    skip_undecodable: bool = True,
    poll_seconds: float = 0.5,
) -> AsyncIterator[Received]:
    """Like :func:`subscribe`, with each record's position."""
    settings = settings or get_settings()
    ts = spec(topic)
    model = model_for(ts.schema)
    physical = topic_name(settings, topic)
    decode = default_codec().decode
    group_id = (
        settings.kafka.topic_prefix + group
        if group
        else f"{settings.kafka.topic_prefix}oddsflow-subscriber-{uuid.uuid4().hex[:8]}"
    )
    consumer = Consumer(
        consumer_config(
            settings,
            group_id,
            **{
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "enable.auto.commit": group is not None,
                "enable.auto.offset.store": False,  # stored once the loop body is done
                "auto.commit.interval.ms": 1000,
                "partition.assignment.strategy": "cooperative-sticky",
            },
        )
    )
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[list[Any]] | None = None
    idle_since = time.monotonic()
    try:
        consumer.subscribe([physical])
        while stop is None or not stop.is_set():
            pending = loop.run_in_executor(None, consumer.consume, 500, poll_seconds)
            messages = await asyncio.shield(pending)
            pending = None
            if not messages:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    return
                continue
            idle_since = time.monotonic()
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error on %s: %s", physical, err)
                    continue
                position = TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)
                try:
                    value = model.from_avro(decode(msg.value(), reader=ts.schema))
                except (DecodeError, ValueError) as exc:
                    if not skip_undecodable:
                        raise
                    log.warning(
                        "skipping undecodable record %s[%d]@%d: %s",
                        msg.topic(),
                        msg.partition(),
                        msg.offset(),
                        exc,
                    )
                    consumer.store_offsets(offsets=[position])
                    continue
                _kind, ms = msg.timestamp()
                when = datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None
                # stored (then committed) when the body asks for the next record or leaves the
                # loop; a process that dies mid-body gets the record again
                try:
                    yield Received(
                        value, msg.topic(), msg.partition(), msg.offset(), msg.key(), when
                    )
                finally:
                    consumer.store_offsets(offsets=[position])
                if stop is not None and stop.is_set():
                    return
    finally:
        if pending is not None:
            await asyncio.wait([pending])
        if group is not None:
            try:
                consumer.commit(asynchronous=False)
            except Exception as exc:  # nothing stored yet, or no assignment
                log.debug("final commit skipped: %s", exc)
        consumer.close()


async def subscribe(
    topic: str,
    group: str | None = None,
    *,
    settings: Settings | None = None,
    from_beginning: bool = False,
    idle_timeout: float | None = None,
    stop: asyncio.Event | None = None,
    skip_undecodable: bool = True,
) -> AsyncIterator[AvroModel]:
    """Typed records of a catalog topic, in partition order (see the module docstring)."""
    async with aclosing(
        subscribe_records(
            topic,
            group,
            settings=settings,
            from_beginning=from_beginning,
            idle_timeout=idle_timeout,
            stop=stop,
            skip_undecodable=skip_undecodable,
        )
    ) as records:
        async for rec in records:
            yield rec.value


# -- command line ---------------------------------------------------------------------------


def format_record(rec: Received) -> str:
    """One line for people: position, then the record's fields."""
    fields = " ".join(
        f"{k}={v}" for k, v in rec.value.model_dump(mode="json", warnings=False).items()
    )
    return f"{rec.topic}[{rec.partition}]@{rec.offset} {fields}"


def add_subscribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", help="catalog topic, e.g. curated.steam_moves")
    parser.add_argument("--group", help="consumer group: resume where it left off, commit")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record kept"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--max", type=non_negative_int, default=0, help="stop after this many records"
    )
    parser.add_argument(
        "--idle-exit",
        type=positive_float,
        default=None,
        help="stop after this many seconds without one",
    )


async def _run_subscribe(settings: Settings, args: argparse.Namespace) -> int:
    n = 0
    stop = asyncio.Event()  # SIGTERM/SIGINT: leave the loop, commit what was printed, exit 0
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ValueError, RuntimeError):  # only the main thread takes signals
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    async with aclosing(
        subscribe_records(
            args.topic,
            args.group,
            settings=settings,
            from_beginning=args.from_beginning,
            idle_timeout=args.idle_exit,
            stop=stop,
        )
    ) as records:
        async for rec in records:
            print(dumps(rec.to_json()) if args.json else format_record(rec), flush=True)
            n += 1
            if args.max and n >= args.max:
                break
    return 0


def run_subscribe(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow subscribe TOPIC``: prints decoded records until stopped (Ctrl-C)."""
    from oddsflow.reach import wait_for_kafka

    try:
        spec(args.topic)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    if not wait_for_kafka(settings):
        return 0
    return asyncio.run(_run_subscribe(settings, args))
