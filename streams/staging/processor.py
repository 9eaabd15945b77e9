"""Stage 1 of the staging zone: decode, parse, validate and normalize one raw record.

Pure: bytes in, encoded staging records and dead letters out, so it is tested and benchmarked
without a broker. Whole-record failures (garbage bytes, wrong schema, unparseable payload) and
refused parts of a payload (one book's empty price, an unknown team) each become a dead letter
with the original bytes, where they came from and a reason.
"""

from __future__ import annotations

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
