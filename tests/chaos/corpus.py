"""Poisoned raw records: everything a hostile or broken source could put on a raw topic.

Deterministic per seed, so the chaos run and its undisturbed reference receive byte-identical
input. Each record has a non-empty key (a null key would be partitioned at random, and the two
runs must put every record on the same partition at the same offset).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from core.topics import raw_topic
from schemas.codec import default_codec

ENVELOPE = "oddsflow.raw.RawEnvelope"

#: Every kind of poison the corpus holds, in the order they are generated.
KINDS = (
    "garbage_bytes",
    "empty_value",
    "wrong_schema",
    "truncated_avro",
    "foreign_fingerprint",
    "invalid_utf8",
    "deeply_nested_json",
    "oversized_payload",
    "huge_numbers",
    "negative_numbers",
    "sql_team_names",
    "unknown_teams",
    "empty_prices",
    "not_json",
    "wrong_json_type",
)

#: Sources whose raw topics receive poison (each has its own parser, all must refuse cleanly).
SOURCES = ("simulator", "odds_api", "sbd", "action_network", "file")

OVERSIZED_BYTES = 600 * 1024  # under the broker's 1 MiB message limit, far over any real payload
NESTING = 50_000


@dataclass(frozen=True)
class Poison:
    kind: str
    topic: str  # logical raw topic (no prefix)
    key: bytes
    value: bytes


def _event(
    home: str, away: str, commence: datetime, outcomes: list[dict], event_id: str
) -> dict[str, object]:
    """An Odds API v4 event with one bookmaker and one h2h market (the simulator's shape)."""
    stamp = commence.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": event_id,
        "sport_key": "baseball_mlb",
        "sport_title": "MLB",
        "commence_time": stamp,
        "home_team": home,
        "away_team": away,
        "bookmakers": [
            {
                "key": "pinnacle",
                "title": "Pinnacle",
                "last_update": stamp,
                "markets": [{"key": "h2h", "last_update": stamp, "outcomes": outcomes}],
            }
        ],
    }


def _payloads(kind: str, n: int, at: datetime, rng: random.Random) -> bytes:
    """The source payload of payload-level poison ``kind`` (the envelope around it is valid)."""
    eid = f"poison-{kind}-{n}"
    home, away = "New York Yankees", "Boston Red Sox"
    if kind == "invalid_utf8":
        return b'{"id":"' + eid.encode() + b'","home_team":"\xff\xfe\xc3\x28 Yankees\xed\xa0\x80"}'
    if kind == "deeply_nested_json":
        return b"[" * NESTING + b"]" * NESTING
    if kind == "oversized_payload":
        pad = "x" * OVERSIZED_BYTES
        return json.dumps(_event(home, away, at, [{"name": pad, "price": 110}], eid)).encode()
    if kind == "huge_numbers":
        price = rng.choice([10**30, 1e308, 2**63, 9_999_999_999])
        out = [{"name": home, "price": price}, {"name": away, "price": price}]
        return json.dumps(_event(home, away, at, out, eid)).encode()
    if kind == "negative_numbers":
        out = [{"name": home, "price": -rng.randint(1, 99)}, {"name": away, "price": -(10**20)}]
        return json.dumps(_event(home, away, at, out, eid)).encode()
    if kind == "sql_team_names":
        sql = rng.choice(
            [
                "Robert'); DROP TABLE odds_lines;--",
                "Yankees' OR '1'='1",
                'Red Sox"; DELETE FROM dead_letters; --',
                "$$; TRUNCATE games; $$",
            ]
        )
        out = [{"name": sql, "price": 120}, {"name": away, "price": -130}]
        return json.dumps(_event(sql, away, at, out, eid)).encode()
    if kind == "unknown_teams":
        h, a = "Springfield Isotopes", "Shelbyville Shelbyvillians"
        out = [{"name": h, "price": 120}, {"name": a, "price": -130}]
        return json.dumps(_event(h, a, at, out, eid)).encode()
    if kind == "empty_prices":
        price = rng.choice([None, "", [], {}])
        out = [{"name": home, "price": price}, {"name": away}]
        return json.dumps(_event(home, away, at, out, eid)).encode()
    if kind == "not_json":
        return b"<html><body>502 Bad Gateway</body></html>"
    if kind == "wrong_json_type":
        return json.dumps(
            rng.choice([[1, 2, 3], "event", 42, None, {"bookmakers": "none"}])
        ).encode()
    raise ValueError(kind)


def build(per_kind: int, seed: int, start: datetime | None = None) -> list[Poison]:
    """``per_kind`` records of every kind, spread over the raw topics of every source."""
    rng = random.Random(seed)
    codec = default_codec()
    envelope = codec.encoder(ENVELOPE)
    line = codec.encoder("oddsflow.operational.PipelineEvent")
    # In the past: a future time would be judged against the wall clock (not reproducible).
    at = (start or datetime.now(UTC)).replace(microsecond=0)
    out: list[Poison] = []
    for kind in KINDS:
        for n in range(per_kind):
            source = SOURCES[(n + KINDS.index(kind)) % len(SOURCES)]
            key = f"poison-{kind}-{n}".encode()
            good = envelope(
                {
                    "event_id": key.decode(),
                    "source": source,
                    "fetched_at": at,
                    "content_type": "application/json",
                    "payload": b'{"id":"x"}',
                    "request": {},
                }
            )
            if kind == "garbage_bytes":
                value = rng.randbytes(rng.randint(1, 4096))
            elif kind == "empty_value":
                value = b""
            elif kind == "wrong_schema":  # valid Avro, but not a RawEnvelope
                value = line(
                    {
                        "event_id": key.decode(),
                        "stage": "chaos",
                        "kind": "not_an_envelope",
                        "at": at,
                        "worker": "chaos",
                        "details": {},
                    }
                )
            elif kind == "truncated_avro":
                value = good[: rng.randint(11, len(good) - 1)]
            elif kind == "foreign_fingerprint":
                value = good[:2] + rng.randbytes(8) + good[10:]
            else:
                value = envelope(
                    {
                        "event_id": key.decode(),
                        "source": source,
                        "fetched_at": at,
                        "content_type": "application/json",
                        "payload": _payloads(kind, n, at, rng),
                        "request": {"url": "https://example.invalid/'; DROP TABLE x;--"},
                    }
                )
            out.append(Poison(kind, raw_topic(source), key, value))
    return out
