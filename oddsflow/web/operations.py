"""The operations page's numbers: lag and throughput sampled in the background, shared by viewers.

Lag comes from :class:`oddsflow.ops.lag.LagMonitor` (end offsets vs committed offsets, the age of
the oldest unconsumed record, Burrow-style status over a sliding window). One sampler per web
process, running only while someone has looked at the page in the last two minutes, so any number
of open browsers costs the broker one sample per interval — and an idle web server costs nothing.
Throughput is the difference between two consecutive samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.offsets import KafkaUnavailable
from core.settings import Settings
from oddsflow.ops.lag import GroupLag, LagMonitor, full_group_name, rates_between
from oddsflow.worker import ROLES

log = logging.getLogger("oddsflow.web.operations")
IDLE_AFTER = 120.0  # seconds without a viewer before sampling pauses
HISTORY = 120  # samples of total lag kept per group for the chart


@dataclass
class StageRate:
    consumed_per_s: float  # committed offsets advanced, records per second
    arrived_per_s: float  # end offsets of the group's input advanced, records per second


def rates(before: GroupLag | None, after: GroupLag) -> StageRate:
    """Records per second consumed and arrived between two samples of one group."""
    if before is None:
        return StageRate(0.0, 0.0)
    consumed, arrived = rates_between(before, after)
    return StageRate(round(consumed, 1), round(arrived, 1))


@dataclass
class OpsSampler:
    settings: Settings
    interval: float = 3.0
    monitor: LagMonitor = field(init=False)
    latest: dict[str, GroupLag] = field(init=False, default_factory=dict)
    previous: dict[str, GroupLag] = field(init=False, default_factory=dict)
    history: dict[str, deque[tuple[float, int, float]]] = field(init=False, default_factory=dict)
    error: str | None = field(init=False, default=None)
    samples: int = field(init=False, default=0)
    _wanted_at: float = field(init=False, default=0.0)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.monitor = LagMonitor(self.settings, list(ROLES), history=False)

    def wanted(self) -> None:
        """A viewer asked: keep sampling for the next :data:`IDLE_AFTER` seconds."""
        self._wanted_at = time.monotonic()
        self._wake.set()

    async def run(self) -> None:
        while True:
            if time.monotonic() - self._wanted_at > IDLE_AFTER:
                self._wake.clear()
                await self._wake.wait()
            await self.sample_once()
            await asyncio.sleep(self.interval)

    async def sample_once(self) -> None:
        """One sample; a caller that waited for a sample in flight takes that one instead."""
        seen = self.samples
        async with self._lock:
            if self.samples != seen:
                return
            await self._sample()

    async def _sample(self) -> None:
        try:
            groups = await self.monitor.sample()
        except KafkaUnavailable as exc:
            self.error = f"Kafka at {self.settings.kafka.bootstrap_servers}: {exc}"
            return
        except Exception as exc:  # the page says what failed; the sampler keeps going
            log.exception("lag sample failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.error = None
        self.samples += 1
        self.previous, self.latest = self.latest, {g.group: g for g in groups}
        for g in groups:
            h = self.history.setdefault(g.group, deque(maxlen=HISTORY))
            h.append((g.observed_at, g.lag, round(g.lag_seconds, 3)))

    def snapshot(self) -> dict[str, Any]:
        """The stages (one per worker role) with lag per partition, rates and lag history."""
        stages = []
        for role in ROLES:
            name = full_group_name(self.settings, role)
            g = self.latest.get(name)
            if g is None:
                continue
            r = rates(self.previous.get(name), g)
            stages.append(
                {
                    "stage": role,
                    "group": name,
                    "state": g.state,
                    "members": g.members,
                    "status": g.status.value,
                    "lag": g.lag,
                    "lag_seconds": round(g.lag_seconds, 3),
                    "consumed_per_s": r.consumed_per_s,
                    "arrived_per_s": r.arrived_per_s,
                    "observed_at": g.observed_at,
                    "partitions": [
                        {
                            "topic": p.topic,
                            "partition": p.partition,
                            "committed": p.committed,
                            "end": p.end,
                            "lag": p.lag,
                            "lag_seconds": None
                            if p.lag_seconds is None
                            else round(p.lag_seconds, 3),
                            "status": p.status.value,
                        }
                        for p in g.partitions
                    ],
                    "history": [list(h) for h in self.history.get(name, ())],
                }
            )
        return {"samples": self.samples, "error": self.error, "stages": stages}


async def start_sampler(sampler: OpsSampler) -> asyncio.Task[None]:
    return asyncio.create_task(sampler.run(), name="oddsflow-web-ops-sampler")


async def stop_sampler(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
