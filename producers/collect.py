"""``oddsflow collect``: run one collector and publish what it gathers to its raw topic."""

from __future__ import annotations

import argparse
import signal
import time

from oddsflow.settings import Settings
from producers.publisher import Publisher
from producers.simulator import Simulator


def simulator_from(settings: Settings, args: argparse.Namespace | None = None) -> Simulator:
    cfg = settings.simulator
    pick = lambda name: getattr(args, name, None) or getattr(cfg, name)  # noqa: E731
    return Simulator(
        seed=pick("seed"),
        games=pick("games"),
        books=pick("books"),
        ticks=pick("ticks"),
        tick_seconds=cfg.tick_seconds,
    )


def publish_simulation(settings: Settings, sim: Simulator, progress: bool = True) -> Publisher:
    """Publish every simulated snapshot; stops early (flushing) on SIGINT/SIGTERM."""
    publisher = Publisher(settings, "simulator")
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        for event_id, payload, fetched_at in sim.envelopes():
            if stopping:
                break
            publisher.publish(event_id, payload, fetched_at, request={"seed": str(sim.seed)})
    finally:
        stats = publisher.close()
        for s, h in old.items():
            signal.signal(s, h)
    if progress:
        took = time.monotonic() - started
        print(
            f"  simulator: {stats.acked} raw records acknowledged by the broker "
            f"({stats.failed} failed) in {took:.1f}s" + (" — stopped early" if stopping else "")
        )
    return publisher


def collect(settings: Settings, args: argparse.Namespace) -> int:
    if args.source == "simulator":
        pub = publish_simulation(settings, simulator_from(settings, args))
        return 0 if pub.stats.failed == 0 else 1
    raise SystemExit(f"oddsflow: unknown source {args.source!r}")
