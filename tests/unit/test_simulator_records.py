"""The simulator's bulk records are the collector's envelopes, byte for byte.

``Simulator.records`` and ``EnvelopeLayout`` exist for speed (issue #4); what they publish must
be exactly what the generic path (``envelopes()`` through the codec, keyed by ``key_of``) would.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.envelope import EnvelopeLayout, varint
from producers.simulator import ScriptedJump, Simulator
from schemas.codec import default_codec
from schemas.fastcodec import enc_long

START = datetime(2026, 4, 1, 17, 0, tzinfo=UTC)
ENVELOPE = "oddsflow.raw.RawEnvelope"


def generic(sim: Simulator, source: str, request: dict[str, str]) -> list[tuple[bytes, bytes, int]]:
    """(game key, envelope, fetched_at in ms): what publishing each envelope by itself gives."""
    encode = default_codec().encoder(ENVELOPE)
    out = []
    for eid, payload, fetched in sim.envelopes():
        record = {
            "event_id": eid, "source": source, "fetched_at": fetched,
            "content_type": "application/json", "payload": payload, "request": request,
        }  # fmt: skip
        out.append((sim.key_of(eid).encode(), encode(record), int(fetched.timestamp() * 1000)))
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        # 120 ticks: the event id grows a digit at ticks 10 and 100
        {"seed": 3, "games": 3, "books": 4, "ticks": 120},
        {"seed": 5, "games": 16, "books": 20, "ticks": 3},
        {
            "seed": 2, "games": 2, "books": 3, "ticks": 12, "drift": False,
            "scripted_jumps": (ScriptedJump(0, "pinnacle", 2, -20),
                               ScriptedJump(1, "fanduel", 5, 30, both_sides=True)),
        },
        {"seed": 4, "games": 2, "books": 5, "ticks": 40, "market_jumps": False,
         "volatility": 0.00025},
    ],
    ids=["digits", "wide", "scripted", "quiet"],
)  # fmt: skip
@pytest.mark.parametrize("request_meta", [{}, {"seed": "7"}], ids=["no-request", "seed"])
def test_records_are_the_encoded_envelopes(kwargs: dict, request_meta: dict[str, str]) -> None:
    expected = generic(Simulator(start=START, **kwargs), "simulator", request_meta)
    sim = Simulator(start=START, **kwargs)
    got = list(sim.records(EnvelopeLayout("simulator", request=request_meta)))
    assert len(got) == len(expected) == sim.games * sim.books * sim.ticks
    assert got == expected
    first = int(START.timestamp() * 1000) + 1000  # tick 0 is fetched a second after it
    assert {ts for _, _, ts in got[: sim.games * sim.books]} == {first}
    assert got[-1][2] == first + (sim.ticks - 1) * sim.tick_seconds * 1000


def test_records_and_quotes_are_the_same_run() -> None:
    """Interleaving the outputs does not change either: the draws live in one walk."""
    a = Simulator(seed=9, games=2, books=3, ticks=30, start=START)
    b = Simulator(seed=9, games=2, books=3, ticks=30, start=START)
    layout = EnvelopeLayout("simulator")
    assert list(a.records(layout)) == list(b.records(layout))
    assert list(a.quotes()) == list(b.quotes())


@pytest.mark.parametrize(
    ("event_id", "payload", "fetched_at", "request_meta", "content_type"),
    [
        ("e1", b"", START, {}, "application/json"),
        ("x" * 200 + "-ü", b"a,b,c" * 500, 1_775_000_000_123_456, {"file": "f.csv", "line": "2"},
         "text/csv"),
        ("", b"{}", datetime(2026, 4, 1, 17, 0, 0, 5), {"url": "https://e/x?a=1", "status": "200"},
         "application/json"),
    ],
)  # fmt: skip
def test_layout_encodes_like_the_codec(
    event_id: str,
    payload: bytes,
    fetched_at: datetime | int,
    request_meta: dict[str, str],
    content_type: str,
) -> None:
    layout = EnvelopeLayout("file", content_type, request_meta)
    record = {
        "event_id": event_id, "source": "file", "fetched_at": fetched_at,
        "content_type": content_type, "payload": payload, "request": request_meta,
    }  # fmt: skip
    frame = layout.encode(event_id, payload, fetched_at)
    assert frame == default_codec().encode(ENVELOPE, record)
    decoded = default_codec().decode(frame)
    assert decoded["payload"] == payload and decoded["request"] == request_meta


def test_varint_is_avros() -> None:
    for n in [*range(20_000), 2**31, 1_775_000_000_123_456, -1, -64, -65, -(2**40)]:
        assert varint(n) == enc_long(n), n
