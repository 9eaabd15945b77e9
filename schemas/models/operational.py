"""Typed models of the operational zone (namespace oddsflow.operational)."""

from __future__ import annotations

from pydantic import Field

from schemas.models.common import AvroInt, AvroLong, AvroModel, AvroStr, Timestamp

__all__ = ["DeadLetter", "PipelineEvent", "QualityReport"]


class DeadLetter(AvroModel):
    """A record that was not promoted, with what is needed to replay it (dlq.<stage>)."""

    avro_name = "oddsflow.operational.DeadLetter"

    stage: AvroStr
    origin_topic: AvroStr
    origin_partition: AvroInt
    origin_offset: AvroLong
    key: bytes | None = None
    original: bytes | None = None  # null: points at its raw record (origin topic:partition:offset)
    part_index: AvroInt | None = None  # a refused part's index; null: the whole record failed
    error_class: AvroStr
    reason: AvroStr
    failed_at: Timestamp


class QualityReport(AvroModel):
    """Data quality of one source at one stage over one minute (operational.quality)."""

    avro_name = "oddsflow.operational.QualityReport"

    source: AvroStr
    stage: AvroStr
    window_start: Timestamp
    records_in: AvroLong
    promoted: AvroLong
    deduplicated: AvroLong
    dead_lettered: AvroLong
    pass_rate: float
    mean_score: float | None = None
    completeness: float | None = None
    accuracy: float | None = None
    consistency: float | None = None
    timeliness: float | None = None
    emitted_at: Timestamp
    late: AvroLong = 0
    empty: AvroLong = 0


class PipelineEvent(AvroModel):
    """A lifecycle or run event of a worker (operational.pipeline_events)."""

    avro_name = "oddsflow.operational.PipelineEvent"

    event_id: AvroStr
    stage: AvroStr
    kind: AvroStr
    at: Timestamp
    worker: AvroStr
    details: dict[AvroStr, AvroStr] = Field(default_factory=dict)
