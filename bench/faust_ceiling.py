"""The ceiling of faust itself: an agent that consumes raw records and forwards them untouched.

Why: the staging worker was a faust app; what faust alone costs per consumed and per sent message
on this box bounds what any staging logic inside it could reach (DESIGN.md, "Runtime": why the
workers left faust). Same app settings as the faust staging role had
(``bench.faust_app.create_app``, at_least_once), same batching (``take_events`` +
enqueued ``app.producer.send``). Run as ``python -m bench.faust_ceiling IN OUT`` with the
settings in the environment (``core.isolation.child_env``); OUT ``-`` consumes only.

``ODDSFLOW_BENCH_FAUST_TUNED=1``: faust at its best as the issue asked before leaving it (uvloop
as the event loop, 5,000 records a poll, a 16,384-event stream buffer): the figure that decided.
"""

from __future__ import annotations

import os
import sys

import faust

from core.settings import get_settings

BATCH, WITHIN = 1000, 0.05  # as the batched faust staging agents had


def build(in_topic: str, out_topic: str | None) -> faust.App:
    """A faust app with one pass-through agent (no processing, no state)."""
    from bench.faust_app import create_app

    app = create_app(get_settings(), "faust-ceiling", processing_guarantee="at_least_once")
    source = app.topic(in_topic)

    @app.agent(source, name="forward")
    async def forward(stream: faust.StreamT) -> None:
        send = app.producer.send
        async for events in stream.take_events(BATCH, within=WITHIN):
            if out_topic is None:
                continue
            for event in events:
                msg = event.message
                await send(out_topic, msg.key, msg.value, None, None, None)

    return app


TUNED_ENV = "ODDSFLOW_BENCH_FAUST_TUNED"


def main() -> None:
    from faust.worker import Worker

    in_topic, out_topic = sys.argv[1], sys.argv[2]
    app = build(in_topic, None if out_topic == "-" else out_topic)
    if os.environ.get(TUNED_ENV) == "1":
        import uvloop

        uvloop.install()
        app.conf.broker_max_poll_records = 5000
        app.conf.stream_buffer_maxsize = 16384
    Worker(app, loglevel="WARN", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
