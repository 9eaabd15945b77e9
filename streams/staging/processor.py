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
from streams.staging.dedupe import encode_fact, fact_of
from streams.staging.parsers import ParseError, Reject, parse_and_validate
from streams.staging.quality import SCORERS
from streams.staging.validate import _where

ENVELOPE = "oddsflow.raw.RawEnvelope"
LINE = "oddsflow.staging.OddsLine"
SPLIT = "oddsflow.staging.BettingSplit"
GAME = "oddsflow.staging.Game"
DEAD = "oddsflow.operational.DeadLetter"
#: Error class of records quarantined by the quality gate (streams/staging/quality.py).
QUALITY_GATE = "quality_gate"


#: Default of ``[pipeline.processing] max_payload_bytes``.
MAX_PAYLOAD_BYTES = 512 * 1024
#: A dead letter's reason is cut to this many characters: reasons quote input (a team name,
#: a price), and an input-sized reason beside the original bytes once made a dead letter larger
#: than the broker accepts — the send failed and the batch with it.
MAX_REASON_CHARS = 500


def bounded_reason(reason: str) -> str:
    """``reason``, cut to MAX_REASON_CHARS with a note of how much was left out."""
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return f"{reason[:MAX_REASON_CHARS]}… ({len(reason) - MAX_REASON_CHARS:,} more characters)"


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
    facts: list[bytes] = field(default_factory=list)  # encoded de-dup fact of each record
    dead: list[bytes] = field(default_factory=list)  # encoded DeadLetter records
    whole_record_failed: bool = False
    reject_classes: Counter[str] = field(default_factory=Counter)
    passed: int = 0  # staged records that passed the quality gate (all of them when it is off)
    quarantined: int = 0  # records under the quality threshold: dead letters, not promoted


class StagingProcessor:
    """Raw envelope bytes → encoded staging records + dead letters."""

    def __init__(
        self,
        future_tolerance: timedelta = timedelta(minutes=10),
        quality_threshold: float | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        """``quality_threshold``: quarantine records scoring under it (None: no quality gate).
        ``max_payload_bytes``: larger raw records are dead-lettered without being parsed."""
        self.max_payload_bytes = max_payload_bytes
        codec = default_codec()
        self._decode = codec.decode
        self._enc = {name: codec.encoder(name) for name in (LINE, SPLIT, GAME, DEAD)}
        self.future_tolerance = future_tolerance
        self.quality_threshold = quality_threshold

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
                "reason": bounded_reason(reason),
                "failed_at": now,
            }
        )

    def process(self, origin: Origin, value: bytes, now: datetime | None = None) -> StageResult:
        now = now or datetime.now(UTC)
        source = origin.topic.rsplit(".", 1)[-1]
        if value is not None and len(value) > self.max_payload_bytes:
            reason = (
                f"record of {len(value):,} bytes is over the {self.max_payload_bytes:,}-byte limit"
                " ([pipeline.processing] max_payload_bytes); not parsed"
            )
            return self._failed(source, origin, value, "oversized", reason, now)
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
        rejects = parsed.rejects
        staged = ((LINE, parsed.lines), (SPLIT, parsed.splits), (GAME, parsed.games))
        if self.quality_threshold is not None:
            staged = tuple((schema, self._gate(schema, recs, rejects)) for schema, recs in staged)
        for r in rejects:
            result.dead.append(self.dead_letter(origin, value, r.error_class, r.reason, now))
            result.reject_classes[r.error_class] += 1
            if r.error_class == QUALITY_GATE:
                result.quarantined += 1
        for schema, records in staged:
            self._emit(result, schema, records)
            result.passed += len(records)
        if not result.records and not result.dead:
            reason = "payload holds no odds, splits or games"
            return self._failed(source, origin, value, "empty_payload", reason, now)
        return result

    def _gate(
        self, schema: str, records: list[dict[str, Any]], rejects: list[Reject]
    ) -> list[dict[str, Any]]:
        """The records that pass the quality gate; the others join ``rejects`` with the reason."""
        threshold = self.quality_threshold
        assert threshold is not None
        scorer = SCORERS[schema]
        kept = []
        for rec in records:
            refusal = scorer(rec).refusal(threshold)
            if refusal is None:
                kept.append(rec)
            else:
                rejects.append(Reject(QUALITY_GATE, f"{_where(rec)}: {refusal}"))
        return kept

    def _emit(self, result: StageResult, schema: str, records: list[dict[str, Any]]) -> None:
        enc = self._enc[schema]
        out, facts = result.records, result.facts
        for rec in records:
            out.append((schema, rec["game_id"].encode(), enc(rec)))
            facts.append(encode_fact(fact_of(schema, rec)))

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
