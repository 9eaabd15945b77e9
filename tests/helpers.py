"""Shared test helpers: wait for a condition (never sleep blindly), run real worker processes."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from core.settings import Settings
from oddsflow.processes import running_workers

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    timeout: float = 120.0,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(value)``; fail with the last value seen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {value!r}"
            )
        await asyncio.sleep(interval)


@contextmanager
def workers(settings: Settings, roles: tuple[str, ...], log_dir: Path) -> Iterator[dict]:
    """Run ``oddsflow worker ROLE`` processes against ``settings``; stop them afterwards."""
    with running_workers(
        settings, roles, log_dir, log_name=lambda role: f"{role}.log",
        verbose=bool(os.environ.get("ODDSFLOW_TEST_VERBOSE_WORKERS")),
    ) as procs:  # fmt: skip
        yield procs


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (held open together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def curated_table(topic: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the sink keeps of a curated topic: the last record per key, withdrawn keys removed,
    without the ``retracted`` flag (a subscriber reading the topic ends at the same rows)."""
    from streams.features.live_engine import result_key

    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in records:
        key = result_key(topic, rec)
        if rec.get("retracted"):
            rows.pop(key, None)
        else:
            rows[key] = {k: v for k, v in rec.items() if k != "retracted"}
    return list(rows.values())


def stop_after_polls(n: int, holder: list[Any]) -> Callable[[float], Awaitable[None]]:
    """A poller's ``sleep``: no wait at all, and a stop once ``holder[0]`` (the collector,
    appended after it is made) has done ``n`` polls: its ``run`` loop, deterministically."""

    async def sleep(_seconds: float) -> None:
        if len(holder[0].polls) >= n:
            holder[0].stop.set()

    return sleep


async def groups_assigned(settings: Settings, groups: list[str], timeout: float = 90.0) -> None:
    """Wait until each consumer group has a member holding partitions (workers joined)."""
    from core.admin import admin_client

    admin = admin_client(settings)

    async def assigned() -> dict[str, int]:
        futures = admin.describe_consumer_groups(groups, request_timeout=10)
        out = {}
        for group, fut in futures.items():
            try:
                d = fut.result(timeout=15)
            except Exception:
                out[group] = 0
                continue
            out[group] = sum(len(m.assignment.topic_partitions) for m in d.members if m.assignment)
        return out

    await wait_for(
        assigned, lambda n: all(n.get(g) for g in groups), timeout=timeout, what="groups joined"
    )
