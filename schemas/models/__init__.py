"""Typed pydantic models mirroring every Avro schema, one module per zone.

``MODELS`` maps each schema full name to its model; ``model_for(name)`` looks one up.
"""

from __future__ import annotations

from schemas.models.common import AvroModel, Market, MoveUnit, Side, SignalType
from schemas.models.curated import Consensus, FeatureVector, LineVelocity, SharpSignal, SteamMove
from schemas.models.operational import DeadLetter, PipelineEvent, QualityReport
from schemas.models.raw import RawEnvelope
from schemas.models.staging import BettingSplit, Game, OddsLine

MODELS: dict[str, type[AvroModel]] = {
    m.avro_name: m
    for m in (
        RawEnvelope,
        OddsLine,
        BettingSplit,
        Game,
        LineVelocity,
        SteamMove,
        SharpSignal,
        Consensus,
        FeatureVector,
        QualityReport,
        PipelineEvent,
        DeadLetter,
    )
}


def model_for(name: str) -> type[AvroModel]:
    """The model class of an Avro full name."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"no model for schema {name!r}; known: {sorted(MODELS)}") from None


__all__ = [
    "MODELS",
    "AvroModel",
    "BettingSplit",
    "Consensus",
    "DeadLetter",
    "FeatureVector",
    "Game",
    "LineVelocity",
    "Market",
    "MoveUnit",
    "OddsLine",
    "PipelineEvent",
    "QualityReport",
    "RawEnvelope",
    "SharpSignal",
    "Side",
    "SignalType",
    "SteamMove",
    "model_for",
]
