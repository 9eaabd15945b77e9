"""Stage 1 of the staging zone: decode, parse, validate and normalize one raw record.

Pure: bytes in, encoded staging records and dead letters out, so it is tested and benchmarked
without a broker. Whole-record failures (garbage bytes, wrong schema, unparseable payload) and
refused parts of a payload (one book's empty price, an unknown team) each become a dead letter
with the original bytes, where they came from and a reason.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import DecodeError, default_codec
from streams.staging.parsers import ParseError, parse_and_validate

ENVELOPE = "oddsflow.raw.RawEnvelope"
LINE = "oddsflow.staging.OddsLine"
SPLIT = "oddsflow.staging.BettingSplit"
GAME = "oddsflow.staging.Game"
DEAD = "oddsflow.operational.DeadLetter"


@dataclass(frozen=True, slots=True)
class Origin:
    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(slots=True)
class StageResult:
    """What one raw record became."""

    source: str
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (schema, key, value)
    dead: list[bytes] = field(default_factory=list)  # encoded DeadLetter records
    whole_record_failed: bool = False
    reject_classes: Counter[str] = field(default_factory=Counter)


class StagingProcessor:
    """Raw envelope bytes → encoded staging records + dead letters."""

    def __init__(self, future_tolerance: timedelta = timedelta(minutes=10)) -> None:
        codec = default_codec()
        self._decode = codec.decode
        self._enc = {name: codec.encoder(name) for name in (LINE, SPLIT, GAME, DEAD)}
        self.future_tolerance = future_tolerance

    def dead_letter(
        self, origin: Origin, value: bytes, error_class: str, reason: str, now: datetime
    ) -> bytes:
        return self._enc[DEAD](
            {
                "stage": "staging",
                "origin_topic": origin.topic,
                "origin_partition": origin.partition,
                "origin_offset": origin.offset,
                "key": origin.key,
                "original": value,
                "error_class": error_class,
                "reason": reason,
                "failed_at": now,
            }
        )

    def process(self, origin: Origin, value: bytes, now: datetime | None = None) -> StageResult:
        now = now or datetime.now(UTC)
        source = origin.topic.rsplit(".", 1)[-1]
        try:
            envelope = self._decode(value or b"", reader=ENVELOPE)
        except DecodeError as exc:
            return self._failed(source, origin, value, exc.reason, exc.message, now)
        source = envelope.get("source") or source
        try:
            parsed = parse_and_validate(envelope, now=now, future_tolerance=self.future_tolerance)
        except ParseError as exc:
            return self._failed(source, origin, value, exc.error_class, exc.reason, now)
        except Exception as exc:  # a parser bug must not stop the pipeline either
            reason = f"parser crashed: {type(exc).__name__}: {exc}"
            return self._failed(source, origin, value, "parser_error", reason, now)
        result = StageResult(source)
        for r in parsed.rejects:
            result.dead.append(self.dead_letter(origin, value, r.error_class, r.reason, now))
            result.reject_classes[r.error_class] += 1
        self._emit(result, LINE, parsed.lines)
        self._emit(result, SPLIT, parsed.splits)
        self._emit(result, GAME, parsed.games)
        if not result.records and not result.dead:
            reason = "payload holds no odds, splits or games"
            return self._failed(source, origin, value, "empty_payload", reason, now)
        return result

    def _emit(self, result: StageResult, schema: str, records: list[dict[str, Any]]) -> None:
        enc = self._enc[schema]
        for rec in records:
            result.records.append((schema, rec["game_id"].encode(), enc(rec)))

    def _failed(
        self,
        source: str,
        origin: Origin,
        value: bytes,
        error_class: str,
        reason: str,
        now: datetime,
    ) -> StageResult:
        result = StageResult(source, whole_record_failed=True)
        result.dead.append(self.dead_letter(origin, value, error_class, reason, now))
        result.reject_classes[error_class] += 1
        return result


# -- repartition bundles ------------------------------------------------------------------------
#
# All staged parts of one raw record for one game travel as ONE repartition message: a frame of
# the already-encoded single-object records, each with its part index. Faust's per-message cost
# (~150 µs) dominated when every part was its own message; the lineage that used to ride in
# per-message headers (origin, i/n) is inside the frame, so reconciliation still finds every part.
# Layout (big-endian): MAGIC | u16 len + origin "topic:partition:offset" | u16 n | u16 count |
# count × (u16 i | u32 len + bytes). Avro single-object frames start with C3 01, never MAGIC.

BUNDLE_MAGIC = b"OFB\x01"
_HEAD = struct.Struct(">H")
_COUNTS = struct.Struct(">HH")
_PART = struct.Struct(">HI")


def encode_bundle(origin: str, n: int, parts: list[tuple[int, bytes]]) -> bytes:
    """One repartition message for ``parts`` ((part index, encoded record)) of a raw record."""
    o = origin.encode()
    chunks = [BUNDLE_MAGIC, _HEAD.pack(len(o)), o, _COUNTS.pack(n, len(parts))]
    for i, frame in parts:
        chunks.append(_PART.pack(i, len(frame)))
        chunks.append(frame)
    return b"".join(chunks)


def is_bundle(value: bytes) -> bool:
    return value[:4] == BUNDLE_MAGIC


def decode_bundle(value: bytes) -> tuple[str, int, list[tuple[int, bytes]]]:
    """(origin, n, [(part index, encoded record)]) of a bundle; ValueError if it is not one."""
    if not is_bundle(value):
        raise ValueError("not a staging bundle")
    try:
        (olen,) = _HEAD.unpack_from(value, 4)
        pos = 6 + olen
        origin = value[6:pos].decode()
        n, count = _COUNTS.unpack_from(value, pos)
        pos += 4
        parts = []
        for _ in range(count):
            i, size = _PART.unpack_from(value, pos)
            pos += 6
            parts.append((i, value[pos : pos + size]))
            pos += size
    except struct.error as exc:
        raise ValueError(f"truncated staging bundle: {exc}") from None
    if pos != len(value):
        raise ValueError("truncated or padded staging bundle")
    return origin, n, parts


def bundles(origin: str, result: StageResult) -> list[tuple[bytes, bytes]]:
    """(game key, bundle) per game of ``result``'s staged records; part i of n as processed.

    n counts dead letters too (they follow the records), as the reconciliation expects.
    """
    n = len(result.records) + len(result.dead)
    by_key: dict[bytes, list[tuple[int, bytes]]] = {}
    for i, (_schema, key, value) in enumerate(result.records):
        parts = by_key.get(key)
        if parts is None:
            by_key[key] = [(i, value)]
        else:
            parts.append((i, value))
    return [(key, encode_bundle(origin, n, parts)) for key, parts in by_key.items()]
