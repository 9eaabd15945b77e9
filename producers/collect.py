"""``oddsflow collect``: run one collector and publish what it gathers to its raw topic.

Every collector prints, when it ends (also on SIGINT/SIGTERM, after flushing), how many records
the broker acknowledged: that is the number the raw topic holds, never more and never less.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from core.argtypes import non_negative_int, port_or_zero, positive_int
from core.settings import Settings
from producers.publisher import Publisher
from producers.simulator import Simulator


def simulator_from(settings: Settings, args: argparse.Namespace | None = None) -> Simulator:
    cfg = settings.simulator

    def pick(name: str) -> int:  # a flag given as 0 is 0, not the configured default
        given = getattr(args, name, None)
        return given if given is not None else getattr(cfg, name)

    live = bool(getattr(args, "live", False))
    return Simulator(
        seed=pick("seed"),
        games=pick("games"),
        books=pick("books"),
        ticks=pick("ticks"),
        tick_seconds=cfg.tick_seconds,
        # live: tick 0 is now and event time runs with the wall clock
        start=datetime.now(UTC).replace(microsecond=0) if live else None,
    )


def simulator_request(sim: Simulator) -> dict[str, str]:
    """The request metadata of a simulated envelope: the seed reproduces the run."""
    return {"seed": str(sim.seed)}


def publish_live(
    settings: Settings,
    sim: Simulator,
    publisher: Publisher | None = None,
    on_tick: Callable[[int, float], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Publisher:
    """Publish the simulation at the pace of its event time: each tick's snapshots when the wall
    clock reaches their fetch time (event time = wall time, as a live poller publishes), flushed
    per tick. ``on_tick(tick, acked_at)``: after each tick is acknowledged (monotonic clock)."""
    if publisher is None:
        publisher = Publisher(settings, "simulator")
        publisher.connect()
    layout = publisher.layout(request=simulator_request(sim))
    tick: list[tuple[bytes, bytes, int]] = []
    n = 0

    def send(batch: list[tuple[bytes, bytes, int]]) -> None:
        nonlocal n
        due = batch[0][2] / 1000
        while (wait := due - time.time()) > 0 and not stop():
            time.sleep(min(wait, 0.2))
        publisher.publish_all(batch)
        publisher.flush()
        if on_tick is not None:
            on_tick(n, time.monotonic())
        n += 1

    try:
        for record in sim.records(layout):
            if tick and record[2] != tick[0][2]:
                send(tick)
                tick = []
                if stop():
                    break
            tick.append(record)
        if tick and not stop():
            send(tick)
    finally:
        publisher.close()
    return publisher


def publish_simulation(
    settings: Settings, sim: Simulator, progress: bool = True, publisher: Publisher | None = None
) -> Publisher:
    """Publish every simulated snapshot; stops early (flushing) on SIGINT/SIGTERM.

    ``publisher``: one made (and connected) beforehand, as the benchmark does; closed here.
    """
    if publisher is None:
        publisher = Publisher(settings, "simulator")
        publisher.connect()
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        layout = publisher.layout(request=simulator_request(sim))
        publisher.publish_all(sim.records(layout), stop=lambda: stopping)
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


HTTP_SOURCES = ("odds_api", "sbd", "action_network")
SOURCES = ("simulator", *HTTP_SOURCES, "file")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """``60s`` / ``5m`` / ``1h`` / ``90`` → seconds (argparse type)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"interval {text!r} is not like 60s, 5m or 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _speed(text: str) -> float | None:
    from producers.history import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``oddsflow collect`` (the CLI calls this for its ``collect`` sub-parser)."""
    parser.add_argument("--source", required=True, choices=SOURCES)
    parser.add_argument("path", nargs="?", type=Path, help="file source: the history to replay")
    g = parser.add_argument_group("simulator")
    g.add_argument("--seed", type=non_negative_int)
    g.add_argument("--games", type=positive_int)
    g.add_argument("--books", type=positive_int)
    g.add_argument("--ticks", type=positive_int)
    g.add_argument(
        "--live", action="store_true",
        help="event time = wall time: tick 0 now, one tick every [simulator] tick_seconds",
    )  # fmt: skip
    g.add_argument(
        "--truth", type=Path, metavar="FILE",
        help="inject steam, RLM and sharp-money events (splits on source sbd) and write their "
        "ground-truth labels to FILE",
    )  # fmt: skip
    g = parser.add_argument_group("HTTP sources (odds_api needs ODDS_API_KEY in the environment)")
    g.add_argument("--interval", type=parse_interval, default=60.0, help="poll period: 60s, 5m")
    g.add_argument("--once", action="store_true", help="poll once and exit")
    g.add_argument("--base-url", help="another host for the source (mirror, test server)")
    g.add_argument(
        "--health-port", type=port_or_zero, default=0,
        help="serve /live and /ready on 127.0.0.1:PORT (ready: polling on schedule; 0: off)",
    )  # fmt: skip
    g = parser.add_argument_group("file replay")
    g.add_argument("--format", choices=("pinnacle", "sbro", "jsonl"), help="default: detected")
    g.add_argument("--speed", type=_speed, default=None, help="event-time speed-up, e.g. 60x")
    g.add_argument("--season", help="sbro: the season year (default: from the file name)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _summary(source: str, acked: int, failed: int, took: float, extra: str = "") -> None:
    print(
        f"  {source}: {acked} raw records acknowledged by the broker ({failed} failed)"
        f" in {took:.1f}s{extra}",
        flush=True,
    )


def collect_file(settings: Settings, args: argparse.Namespace) -> int:
    from producers.history import file_records, run_replay

    if args.path is None:  # a usage error: status 2, as argparse gives
        print("oddsflow collect: error: --source file needs the PATH of a history file",
              file=sys.stderr)  # fmt: skip
        return 2
    # An unreadable file (missing, a directory, no permission, corrupt gzip, unknown format)
    # raises HistoryFileError: one line on stderr, status 1, before any Kafka connection.
    records = getattr(args, "records", None) or file_records(
        args.path, getattr(args, "format", None), getattr(args, "season", None)
    )
    publisher = Publisher(settings, "file")
    publisher.connect()
    res = run_replay(
        publisher,
        records,
        speed=getattr(args, "speed", None),
        show_progress=not getattr(args, "no_progress", False),
        label=args.path.name,
    )
    extra = f" — stopped early after {res.sent} of {res.total}" if res.stopped else ""
    _summary("file", res.stats.acked, res.stats.failed, res.seconds, extra)
    return 0 if res.stats.failed == 0 else 1


def collect_http(settings: Settings, args: argparse.Namespace) -> int:
    """An always-on poller: stores what it can, records every refusal on dlq.collect."""
    from producers.http import BodyLimits, run_http_collector, source_spec
    from producers.refusals import DeadLetters

    logging.getLogger("oddsflow.collect").setLevel(logging.INFO)  # one line per poll, always
    spec = source_spec(args.source, getattr(args, "base_url", None))
    publisher = Publisher(settings, args.source)
    publisher.connect()
    refusals = DeadLetters(settings, args.source)
    refusals.connect()
    started = time.monotonic()
    try:
        rc, _ = asyncio.run(
            run_http_collector(
                spec,
                publisher,
                getattr(args, "interval", 60.0),
                args.once,
                api_key=_api_key(settings, spec.key_env),
                limits=BodyLimits.of(settings),
                refusals=refusals,
                health_port=getattr(args, "health_port", 0),
            )
        )
    finally:
        stats = publisher.close()
        refusals.flush()
    extra = f", {refusals.written} refusals recorded on dlq.collect" if refusals.written else ""
    extra += f", {refusals.failed} refusals NOT recorded" if refusals.failed else ""
    _summary(args.source, stats.acked, stats.failed, time.monotonic() - started, extra)
    return rc if stats.failed == 0 else 1


def _api_key(settings: Settings, key_env: str | None) -> str | None:
    """The source's key from the settings (environment or file only; see CollectorSettings)."""
    key = settings.collectors.odds_api_key if key_env == "ODDS_API_KEY" else None
    return key.get_secret_value() if key is not None else None


def publish_truth(settings: Settings, args: argparse.Namespace) -> int:
    """The simulator with injected, labelled events: odds to raw.odds.simulator, splits to
    raw.odds.sbd, labels to ``args.truth``."""
    from producers.simulator_truth import TruthSimulator

    base = simulator_from(settings, args)
    truth = TruthSimulator(
        seed=base.seed, games=base.games, books=base.books, ticks=base.ticks,
        tick_seconds=base.tick_seconds,
    )  # fmt: skip
    publishers = {src: Publisher(settings, src) for src in ("simulator", "sbd")}
    for pub in publishers.values():
        pub.connect()
    started = time.monotonic()
    for source, event_id, payload, fetched_at in truth.envelopes():
        key = truth.sim.key_of(event_id) if source == "simulator" else source
        publishers[source].publish(event_id, payload, fetched_at, key=key, timestamp=fetched_at)
    failed = 0
    for source, pub in publishers.items():
        stats = pub.close()
        failed += stats.failed
        _summary(source, stats.acked, stats.failed, time.monotonic() - started)
    truth.write_labels(args.truth)
    print(f"  ground truth: {len(truth.labels)} labelled events written to {args.truth}")
    return 0 if failed == 0 else 1


def collect(settings: Settings, args: argparse.Namespace) -> int:
    if args.source == "simulator" and getattr(args, "truth", None):
        return publish_truth(settings, args)
    if args.source == "simulator" and getattr(args, "live", False):
        sim = simulator_from(settings, args)
        print(f"  simulator: live, {sim.games} games x {sim.books} books, a tick every"
              f" {sim.tick_seconds}s for {sim.ticks} ticks")  # fmt: skip
        pub = publish_live(settings, sim)
        print(
            f"  simulator: {pub.stats.acked} raw records acknowledged ({pub.stats.failed} failed)"
        )
        return 0 if pub.stats.failed == 0 else 1
    if args.source == "simulator":
        pub = publish_simulation(settings, simulator_from(settings, args))
        return 0 if pub.stats.failed == 0 else 1
    if args.source == "file":
        return collect_file(settings, args)
    if args.source in HTTP_SOURCES:
        return collect_http(settings, args)
    raise SystemExit(f"oddsflow: unknown source {args.source!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m producers.collect ...``: the same arguments as ``oddsflow collect``."""
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m producers.collect")
    add_collect_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return collect(load_settings(), args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
