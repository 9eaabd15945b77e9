"""Stage 1 of the staging zone: decode, parse, validate and normalize one raw record.

Pure: bytes in, encoded staging records and dead letters out, so it is tested and benchmarked
without a broker. A whole-record failure (garbage bytes, wrong schema, unparseable payload) is
one dead letter carrying the original bytes (up to MAX_ORIGINAL_BYTES); a refused part of a
payload (one book's empty price, a quarantined line) is a dead letter that points at its raw
record — topic, partition, offset and the part's index — without a copy: a payload with many
refused lines would otherwise be copied once per line. Every dead letter says where it came from
and why. An empty slate (an Odds API ``[]``: a day without games) is no failure: its result is
``empty``, with neither records nor dead letters, for the worker to count as its own fate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.formats import ParseError, Reject
from core.formats.base import Context, context_of
from schemas.codec import DecodeError, default_codec
from streams.staging.dedupe import encode_fact, fact_of
from streams.staging.fastpath import OddsApiStager, Staged
from streams.staging.fastpath_pinnacle import PinnacleStager
from streams.staging.quality import LIVE, QUALITY_GATE, SCORERS, Timing, timing_of
from streams.staging.validate import parse_and_validate, record_where

ENVELOPE = "oddsflow.raw.RawEnvelope"
LINE = "oddsflow.staging.OddsLine"
SPLIT = "oddsflow.staging.BettingSplit"
GAME = "oddsflow.staging.Game"
DEAD = "oddsflow.operational.DeadLetter"


#: Default of ``[pipeline.processing] max_payload_bytes``: staging parses what the raw topics
#: accept (8 MB payloads, issue #18); a larger record is dead-lettered unparsed.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
#: A whole-record dead letter carries its original up to this size. A larger one (an oversized
#: payload) points at its raw record instead, like a refused part, with a note in the reason: the
#: broker refuses messages over 1 MiB, and the raw topic holds the bytes (dlq replay reads them
#: there). Every record under the former 512 KiB payload limit is still copied.
MAX_ORIGINAL_BYTES = 512 * 1024
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
    """Where a raw record was read: topic, partition, offset, key, and its Kafka timestamp
    (milliseconds since the epoch; the quality gate's publish time, see quality.py)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int | None = None

    def published_at(self) -> datetime | None:
        """The record's Kafka timestamp as an aware datetime (None when not known)."""
        if self.timestamp_ms is None or self.timestamp_ms < 0:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


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
    empty: bool = False  # an empty slate (a day without games): counted, not dead-lettered


#: Sources whose payloads take the typed hot path (streams/staging/fastpath.py) when they can.
FAST_SOURCES = frozenset({"odds_api", "simulator"})
#: File rows of this format take the Pinnacle hot path (streams/staging/fastpath_pinnacle.py).
FAST_FILE_FORMAT = "pinnacle"


class StagingProcessor:
    """Raw envelope bytes → encoded staging records + dead letters."""

    def __init__(
        self,
        future_tolerance: timedelta = timedelta(minutes=10),
        quality_threshold: float | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        *,
        fast_path: bool = True,
    ) -> None:
        """``quality_threshold``: quarantine records scoring under it (None: no quality gate).
        ``max_payload_bytes``: larger raw records are dead-lettered without being parsed.
        ``fast_path``: False sends every payload through the generic parsers (the reference the
        tests compare the hot paths with, and the benchmark's before)."""
        self.max_payload_bytes = max_payload_bytes
        codec = default_codec()
        self._decode = codec.decode
        self._enc = {name: codec.encoder(name) for name in (LINE, SPLIT, GAME, DEAD)}
        self._fast = OddsApiStager(codec) if fast_path else None
        self._fast_rows = PinnacleStager(codec) if fast_path else None
        self.future_tolerance = future_tolerance
        self.quality_threshold = quality_threshold

    def dead_letter(
        self,
        origin: Origin,
        value: bytes | None,
        error_class: str,
        reason: str,
        now: datetime,
        part_index: int | None = None,
    ) -> bytes:
        """A DeadLetter record. ``part_index`` None: the whole record failed and the dead letter
        carries ``value`` (when it is at most MAX_ORIGINAL_BYTES, else it points at the raw
        record, and says so). A part index: part ``part_index`` of the raw record was refused;
        the dead letter points at the record (origin topic, partition, offset) and copies
        nothing."""
        reason = bounded_reason(reason)
        original = None
        if part_index is None and value is not None:
            if len(value) <= MAX_ORIGINAL_BYTES:
                original = value
            else:
                reason += (
                    f" (the {len(value):,} bytes are not copied here: read them at"
                    f" {origin.topic}:{origin.partition}:{origin.offset})"
                )
        return self._enc[DEAD](
            {
                "stage": "staging",
                "origin_topic": origin.topic,
                "origin_partition": origin.partition,
                "origin_offset": origin.offset,
                "key": origin.key,
                "original": original,
                "part_index": part_index,
                "error_class": error_class,
                "reason": reason,
                "failed_at": now,
            }
        )

    def process(
        self, origin: Origin, value: bytes | None, now: datetime | None = None
    ) -> StageResult:
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
            staged = self._stage(envelope, origin, now)
        except ParseError as exc:
            return self._failed(source, origin, value, exc.error_class, exc.reason, now)
        except Exception as exc:  # a parser bug must not stop the pipeline either
            reason = f"parser crashed: {type(exc).__name__}: {exc}"
            return self._failed(source, origin, value, "parser_error", reason, now)
        result = StageResult(
            source, staged.records, staged.facts, passed=staged.passed,
            quarantined=staged.quarantined, empty=staged.empty,
        )  # fmt: skip
        if staged.empty:
            return result
        dead, classes = result.dead, result.reject_classes
        # part i of n: the staged records first, then the refused parts (the worker's headers)
        for i, r in enumerate(staged.rejects, start=len(staged.records)):
            dead.append(self.dead_letter(origin, value, r.error_class, r.reason, now, i))
            classes[r.error_class] += 1
        if not result.records and not dead:
            reason = "payload holds no odds, splits or games"
            return self._failed(source, origin, value, "empty_payload", reason, now)
        return result

    def _stage(self, envelope: dict[str, Any], origin: Origin, now: datetime) -> Staged:
        """Parse, validate, gate and encode one decoded envelope: a hot path when the source has
        one and the payload fits it, else the generic parsers. Raises ParseError."""
        ctx = context_of(envelope)
        threshold = self.quality_threshold
        timing = LIVE
        if threshold is not None:  # observed = fetched_at, published = the Kafka timestamp
            timing = timing_of(ctx.source, ctx.fetched_at, origin.published_at(), now)
        fast = self._hot_path(ctx)
        if fast is not None:
            staged = fast.stage(
                envelope.get("payload"), ctx, now, self.future_tolerance, threshold, timing
            )
            if staged is not None:
                return staged
        parsed = parse_and_validate(envelope, now=now, future_tolerance=self.future_tolerance)
        if parsed.empty:
            return Staged([], [], [], empty=True)
        rejects = parsed.rejects
        staged_records = ((LINE, parsed.lines), (SPLIT, parsed.splits), (GAME, parsed.games))
        if threshold is not None:
            staged_records = tuple(
                (schema, self._gate(schema, recs, rejects, timing))
                for schema, recs in staged_records
            )
        encoded: list[tuple[str, bytes, bytes]] = []
        facts: list[bytes] = []
        for schema, records in staged_records:
            self._emit(encoded, facts, schema, records)
        quarantined = sum(1 for r in rejects if r.error_class == QUALITY_GATE)
        return Staged(encoded, facts, rejects, len(encoded), quarantined)

    def _hot_path(self, ctx: Context) -> OddsApiStager | PinnacleStager | None:
        """The hot path for the envelope's source (and file format), if it has one."""
        if ctx.source in FAST_SOURCES:
            return self._fast
        if ctx.source == "file" and ctx.request.get("format") == FAST_FILE_FORMAT:
            return self._fast_rows
        return None

    def _gate(
        self, schema: str, records: list[dict[str, Any]], rejects: list[Reject], timing: Timing
    ) -> list[dict[str, Any]]:
        """The records that pass the quality gate; the others join ``rejects`` with the reason."""
        threshold = self.quality_threshold
        assert threshold is not None
        scorer = SCORERS[schema]
        kept = []
        for rec in records:
            refusal = scorer(rec, timing).refusal(threshold)
            if refusal is None:
                kept.append(rec)
            else:
                rejects.append(Reject(QUALITY_GATE, f"{record_where(rec)}: {refusal}"))
        return kept

    def _emit(
        self,
        encoded: list[tuple[str, bytes, bytes]],
        facts: list[bytes],
        schema: str,
        records: list[dict[str, Any]],
    ) -> None:
        enc = self._enc[schema]
        for rec in records:
            encoded.append((schema, rec["game_id"].encode(), enc(rec)))
            facts.append(encode_fact(fact_of(schema, rec)))

    def _failed(
        self,
        source: str,
        origin: Origin,
        value: bytes | None,
        error_class: str,
        reason: str,
        now: datetime,
    ) -> StageResult:
        result = StageResult(source, whole_record_failed=True)
        result.dead.append(self.dead_letter(origin, value, error_class, reason, now))
        result.reject_classes[error_class] += 1
        return result
