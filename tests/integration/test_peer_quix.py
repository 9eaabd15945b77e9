"""The Quix Streams peer of the staging stage (bench/peers) on the real broker: exact counts.

The input is keyed as the collector keys it (game and book, ``Simulator.key_of``), so each
identity's snapshots sit on one partition in order and the number of changed lines is fixed:
it must equal a plain pure-Python de-dup of the same records in publish order.
"""

from __future__ import annotations

import json

import pytest

from bench.peers.quix_staging import run_peer
from bench.stages import create_topic, produce_all, raw_envelopes
from core.domain.books import canonical_book
from core.settings import Settings
from core.topics import raw_topic, topic_name
from producers.simulator import Simulator
from schemas.codec import default_codec

N = 900  # three ticks of the bench slate (15 games x 20 books): ticks 1-2 repeat most prices


def reference(records: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """(lines, changed lines): the de-dup in plain Python over the records in order.

    Books are canonical, as in oddsflow's staging: the slate's ``williamhill`` quotes are
    ``caesars`` lines (one identity for two simulated books, so more of them change).
    """
    last: dict[tuple[str, ...], tuple[object, object]] = {}
    lines = changed = 0
    for _key, value in records:
        event = json.loads(default_codec().decode(value)["payload"])
        game = (event["commence_time"], event["away_team"], event["home_team"])
        for bm in event["bookmakers"]:
            for mk in bm["markets"]:
                for oc in mk["outcomes"]:
                    lines += 1
                    identity = (*game, canonical_book(bm["key"]), mk["key"], oc["name"])
                    now = (oc["price"], oc.get("point"))
                    if last.get(identity) != now:
                        changed += 1
                        last[identity] = now
    return lines, changed


@pytest.fixture
def raw_input(settings: Settings) -> tuple[str, list[tuple[bytes, bytes]]]:
    records = [(Simulator.key_of(k.decode()).encode(), v) for k, v in raw_envelopes(N)]
    topic = topic_name(settings, raw_topic("simulator"))
    create_topic(settings, topic)
    produce_all(settings, topic, records)
    return topic, records


@pytest.mark.parametrize("mode", ["staging", "staging-per-line"])
def test_peer_emits_exactly_the_changed_lines(
    settings: Settings, raw_input: tuple[str, list[tuple[bytes, bytes]]], mode: str
) -> None:
    topic, records = raw_input
    lines, changed = reference(records)
    assert changed < lines  # the input repeats prices, so the de-dup has work to do
    r = run_peer(settings, topic, N, mode=mode)
    assert r.complete and r.records == N
    assert r.lines == lines == 6 * N
    assert r.outputs == changed


def test_passthrough_forwards_every_record(
    settings: Settings, raw_input: tuple[str, list[tuple[bytes, bytes]]]
) -> None:
    topic, _records = raw_input
    r = run_peer(settings, topic, N, mode="passthrough")
    assert r.complete and (r.records, r.lines, r.outputs) == (N, N, N)
    assert r.seconds > 0 and r.cpu_seconds > 0 and r.startup_seconds > 0


def test_a_run_that_cannot_finish_is_stopped_and_says_so(
    settings: Settings, raw_input: tuple[str, list[tuple[bytes, bytes]]]
) -> None:
    """Waiting for one record more than the topic holds: SIGTERM at the deadline, Quix stops
    gracefully, and the result reports what was processed as incomplete."""
    topic, _records = raw_input
    r = run_peer(settings, topic, N + 1, mode="passthrough", timeout=20)
    assert not r.complete and (r.records, r.outputs) == (N, N)
