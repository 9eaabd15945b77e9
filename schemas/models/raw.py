"""Typed models of the raw zone (namespace oddsflow.raw)."""

from __future__ import annotations

from pydantic import Field

from schemas.models.common import AvroModel, AvroStr, Timestamp


class RawEnvelope(AvroModel):
    """One payload exactly as a source sent it (topics raw.odds.<source>)."""

    avro_name = "oddsflow.raw.RawEnvelope"

    event_id: AvroStr
    source: AvroStr
    fetched_at: Timestamp
    content_type: AvroStr = "application/json"
    payload: bytes
    request: dict[AvroStr, AvroStr] = Field(default_factory=dict)
