"""The Quix Streams peer's own logic (bench/peers/quix_app.py), without a broker.

Runs in the peer's environment (.venv-peer), by tests/unit/test_peer_environment.py."""

from __future__ import annotations

from typing import Any

import pytest

from bench.peers.quix_app import changed, changed_lines, envelope_deserializer, event_lines
from bench.stages import raw_envelopes


class DictState:
    """The two methods of Quix's ``State`` the de-dup uses."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


def test_one_envelope_becomes_six_normalized_lines() -> None:
    """Decoded through the single-object header; teams, book and game id canonical; decimal
    odds and the no-vig pair (summing to 1) beside each American price."""
    _key, value = raw_envelopes(1)[0]
    lines = event_lines(envelope_deserializer()(value, None))  # type: ignore[arg-type]
    assert [(ln["market"], ln["side"]) for ln in lines] == [
        ("moneyline", "home"), ("moneyline", "away"), ("spread", "home"), ("spread", "away"),
        ("total", "over"), ("total", "under"),
    ]  # fmt: skip
    first = lines[0]
    assert first["game_id"] == f"MLB-{first['game_id'][4:12]}-{first['away']}@{first['home']}-1"
    assert first["book"] == "pinnacle" and first["line"] is None
    for home, away in zip(lines[::2], lines[1::2], strict=True):
        assert home["novig_prob"] + away["novig_prob"] == pytest.approx(1.0)
        for ln in (home, away):
            p = ln["price"]
            assert ln["decimal"] == pytest.approx(1 + (p / 100 if p > 0 else 100 / -p))
    assert lines[4]["line"] == lines[5]["line"] and lines[2]["line"] == -lines[3]["line"]


def test_wrong_header_is_refused() -> None:
    from quixstreams.models.serializers import SerializationError

    _key, value = raw_envelopes(1)[0]
    with pytest.raises(SerializationError):
        envelope_deserializer()(b"\xc3\x01" + bytes(8) + value[10:], None)  # type: ignore[arg-type]


def test_unusable_outcomes_are_dropped_not_raised() -> None:
    """Bad data is skipped per market (the peer has no dead letters)."""
    envelope = envelope_deserializer()(raw_envelopes(1)[0][1], None)  # type: ignore[arg-type]
    payload = envelope["payload"].replace(b'"Over"', b'"Sideways"')
    assert [ln["market"] for ln in event_lines({**envelope, "payload": payload})] == [
        "moneyline", "moneyline", "spread", "spread",
    ]  # fmt: skip
    unknown = envelope["payload"].replace(b'"home_team":"', b'"home_team":"Nowhere ')
    assert event_lines({**envelope, "payload": unknown}) == []


def test_changed_emits_only_new_price_or_line_per_identity() -> None:
    state = DictState()
    line = {"book": "pinnacle", "market": "spread", "side": "home", "price": -110, "line": -1.5}
    assert changed(line, state)  # type: ignore[arg-type]
    assert not changed(dict(line), state)  # type: ignore[arg-type]
    assert changed({**line, "line": -2.5}, state)  # type: ignore[arg-type]
    assert changed({**line, "side": "away"}, state)  # type: ignore[arg-type]
    again = [line, {**line, "price": -115}, {**line, "price": -115}]
    assert [ln["price"] for ln in changed_lines(again, state)] == [-110, -115]  # type: ignore[arg-type]
