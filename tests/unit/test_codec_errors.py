"""Codec framing errors, encode errors, and decoding curated records with fastavro alone."""

from __future__ import annotations

import datetime as dt
import io
import json
import random

import fastavro
import pytest

from schemas.codec import (
    HEADER_LEN,
    BadMarker,
    CorruptBody,
    DecodeError,
    EmptyRecord,
    EncodeError,
    TrailingBytes,
    TruncatedBody,
    UnknownFingerprint,
    WrongSchema,
    default_codec,
)
from schemas.registry import AVRO_DIR, default_registry

UTC = dt.UTC
T0 = dt.datetime(2024, 4, 3, 17, 5, tzinfo=UTC)
ODDS = "oddsflow.staging.OddsLine"
LINE = {
    "game_id": "MLB-20240403-STL@PIT-1",
    "commence_time": T0,
    "home_team": "PIT",
    "away_team": "STL",
    "book": "pinnacle",
    "market": "moneyline",
    "side": "home",
    "line": None,
    "price_american": -105,
    "price_decimal": 1 + 100 / 105,
    "implied_prob": 105 / 205,
    "novig_prob": 0.5,
    "event_time": T0,
    "ingested_at": T0 + dt.timedelta(seconds=3),
    "source": "odds_api",
    "source_event_id": "odds_api-1",
}

CURATED = {
    "oddsflow.curated.LineVelocity": {
        "game_id": "MLB-20240403-STL@PIT-1",
        "market": "spread",
        "side": "home",
        "book": "median",
        "window_minutes": 15,
        "event_time": T0,
        "unit": "points",
        "value": -1.5,
        "value_before": -1.0,
        "change": -0.5,
        "velocity": -0.5 / 15,
    },
    "oddsflow.curated.SteamMove": {
        "move_id": "MLB-20240403-STL@PIT-1|moneyline|home|2024-04-03T17:05:00Z",
        "game_id": "MLB-20240403-STL@PIT-1",
        "market": "moneyline",
        "direction": "home",
        "detected_at": T0,
        "window_minutes": 5,
        "books": ["pinnacle", "circa", "draftkings"],
        "first_mover": "pinnacle",
        "first_move_at": T0 - dt.timedelta(minutes=3),
        "magnitude": 15.0,
        "unit": "cents",
        "confidence": 0.375,
        "books_quoting": 8,
    },
    "oddsflow.curated.SharpSignal": {
        "signal_id": "sig-1",
        "game_id": "MLB-20240403-STL@PIT-1",
        "market": "total",
        "signal_type": "reverse_line_movement",
        "side": "under",
        "tier": "65",
        "event_time": T0,
        "tickets_pct": 31.0,
        "money_pct": None,
        "bets": 1200,
        "line_move": -0.5,
        "unit": "points",
        "split_source": "action_network",
        "book": "consensus",
    },
    "oddsflow.curated.Consensus": {
        "game_id": "MLB-20240403-STL@PIT-1",
        "market": "spread",
        "side": "away",
        "event_time": T0,
        "median_novig_prob": 0.512,
        "spread_novig_prob": 0.021,
        "best_price_american": 125,
        "best_book": "fanduel",
        "book_count": 7,
        "median_line": 1.5,
    },
    "oddsflow.curated.FeatureVector": {
        "game_id": "MLB-20240403-STL@PIT-1",
        "market": "moneyline",
        "feature_set_version": "v1",
        "event_time": T0,
        "home_team": "PIT",
        "away_team": "STL",
        "sharp_action_score": 12.5,
        "rlm_indicator": True,
        "steam_detected": False,
        "line_velocity": -0.8,
        "movement_consistency": 0.75,
        "cross_book_consensus": 0.53,
        "team_sharp_action_history": None,
        "actual_outcome": "win",
        "profit_loss": 0.95,
    },
}


@pytest.fixture(scope="module")
def frame() -> bytes:
    return default_codec().encode(ODDS, LINE)


def expect(data: object, cls: type[DecodeError], reason: str, reader: str | None = ODDS) -> None:
    with pytest.raises(DecodeError) as info:
        default_codec().decode(data, reader=reader)  # type: ignore[arg-type]
    assert type(info.value) is cls
    assert info.value.reason == reason
    assert info.value.message


def test_round_trip_values(frame: bytes) -> None:
    assert frame[:2] == b"\xc3\x01"
    assert frame[2:HEADER_LEN] == default_registry().get(ODDS).fingerprint
    assert default_codec().decode(frame, reader=ODDS) == LINE
    assert default_codec().decode(bytearray(frame)) == LINE
    assert default_codec().decode(memoryview(frame)) == LINE


def test_wrong_marker(frame: bytes) -> None:
    expect(b"\xc3\x02" + frame[2:], BadMarker, "bad_marker")
    expect(b'{"game_id": "x"}', BadMarker, "bad_marker")
    expect(b"\x00\x01", BadMarker, "bad_marker")
    expect("not bytes", BadMarker, "bad_marker")


def test_unknown_fingerprint(frame: bytes) -> None:
    expect(frame[:2] + b"\x01" * 8 + frame[HEADER_LEN:], UnknownFingerprint, "unknown_fingerprint")


def test_wrong_schema() -> None:
    data = default_codec().encode(
        "oddsflow.curated.Consensus", CURATED["oddsflow.curated.Consensus"]
    )
    expect(data, WrongSchema, "wrong_schema")


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_truncated_body(frame: bytes, cut: int) -> None:
    expect(frame[:-cut], TruncatedBody, "truncated_body")


def test_truncated_header(frame: bytes) -> None:
    expect(frame[:6], TruncatedBody, "truncated_body")


def test_trailing_bytes(frame: bytes) -> None:
    expect(frame + b"\x00", TrailingBytes, "trailing_bytes")
    expect(frame + frame, TrailingBytes, "trailing_bytes")


def test_empty_bytes() -> None:
    expect(b"", EmptyRecord, "empty_record")
    expect(None, EmptyRecord, "empty_record")


def test_corrupt_body(frame: bytes) -> None:
    body = bytearray(frame)
    market_at = frame.index(b"pinnacle") + len(b"pinnacle")
    body[market_at] = 0x7E  # enum index 63 of 3 symbols
    expect(bytes(body), CorruptBody, "corrupt_body")
    bad_utf8 = bytearray(frame)
    at = frame.index(b"PIT")
    bad_utf8[at] = 0xFF
    expect(bytes(bad_utf8), CorruptBody, "corrupt_body")


def test_garbage_bytes_only_raise_decode_errors(frame: bytes) -> None:
    """Random bodies behind a valid header, and random whole values: DecodeError, nothing else."""
    rng = random.Random(7)
    reasons: set[str] = set()
    for i in range(3000):
        n = rng.randrange(0, 200)
        garbage = bytes(rng.randrange(256) for _ in range(n))
        data = frame[:HEADER_LEN] + garbage if i % 2 else garbage
        try:
            default_codec().decode(data, reader=ODDS)
        except DecodeError as exc:
            reasons.add(exc.reason)
    assert {"bad_marker", "truncated_body", "corrupt_body"} <= reasons
    assert reasons <= {
        "bad_marker",
        "truncated_body",
        "corrupt_body",
        "trailing_bytes",
        "empty_record",
    }


def test_encode_errors_name_the_field() -> None:
    enc = default_codec().encoder(ODDS)
    for field, value in [
        ("price_american", 1.5),
        ("price_american", 2**31),
        ("market", "parlay"),
        ("home_team", b"PIT"),
        ("novig_prob", "0.5"),
        ("event_time", "2024-04-03"),
        ("price_decimal", True),
    ]:
        with pytest.raises(EncodeError) as info:
            enc({**LINE, field: value})
        assert field in str(info.value)
    missing = {k: v for k, v in LINE.items() if k != "book"}
    with pytest.raises(EncodeError, match="book"):
        enc(missing)


def test_int_timestamps_encode_like_datetimes() -> None:
    micros = {
        k: (int((v - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000)
        if isinstance(v, dt.datetime)
        else v
        for k, v in LINE.items()
    }
    naive = {
        k: v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for k, v in LINE.items()
    }
    expected = default_codec().encode(ODDS, LINE)
    assert default_codec().encode(ODDS, micros) == expected
    assert default_codec().encode(ODDS, naive) == expected


@pytest.mark.parametrize("name", sorted(CURATED))
def test_curated_records_decode_with_fastavro_and_the_avsc_alone(name: str) -> None:
    """A downstream subscriber needs only the .avsc file: no oddsflow code involved."""
    data = default_codec().encode(name, CURATED[name])
    (avsc,) = [
        p
        for p in AVRO_DIR.glob("curated/*.avsc")
        if "{namespace}.{name}".format(**json.loads(p.read_text())) == name
    ]
    with open(avsc) as fh:
        schema = fastavro.parse_schema(json.load(fh))
    decoded = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)
    assert decoded == {**CURATED[name], "retracted": False}  # the default, written out
    assert decoded == default_codec().decode(data, reader=name)
    withdrawn = default_codec().encode(name, {**CURATED[name], "retracted": True})
    assert fastavro.schemaless_reader(io.BytesIO(withdrawn[10:]), schema)["retracted"] is True


def test_varints_of_every_length_are_read_back() -> None:
    """read_long reads one- and two-byte varints first (lengths, block counts), then the 8-byte
    timestamps, then any other length: each gives the value and position fastavro's bytes say."""
    from schemas.fastcodec import Corrupt, enc_long, read_long

    values = [0, -1, 1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 2**20, -(2**35)]
    values += [2**49, -(2**55), 1_743_377_297_382_273, 2**62, -(2**63), 2**63 - 1]
    for n in values:
        data = b"\x07" + enc_long(n) + b"\x09"
        out = io.BytesIO()
        fastavro.schemaless_writer(out, "long", n)
        assert data[1:-1] == out.getvalue()
        assert read_long(data, 1) == (n, len(data) - 1)
        with pytest.raises(IndexError):
            read_long(data[:-2], 1)  # truncated: the decoders say "body ends early"
    with pytest.raises(Corrupt):
        read_long(b"\xff" * 12, 0)
