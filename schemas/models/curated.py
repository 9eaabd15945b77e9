"""Typed models of the curated zone (namespace oddsflow.curated)."""

from __future__ import annotations

from schemas.models.common import (
    AvroInt,
    AvroLong,
    AvroModel,
    AvroStr,
    MarketField,
    MoveUnit,
    MoveUnitField,
    SideField,
    SignalType,
    SignalTypeField,
    Timestamp,
)

__all__ = [
    "Consensus",
    "FeatureVector",
    "LineVelocity",
    "MoveUnit",
    "SharpSignal",
    "SignalType",
    "SteamMove",
]


class LineVelocity(AvroModel):
    """How fast one side's line moves over a window (curated.line_velocity)."""

    avro_name = "oddsflow.curated.LineVelocity"

    game_id: AvroStr
    market: MarketField
    side: SideField
    book: AvroStr
    window_minutes: AvroInt
    event_time: Timestamp
    unit: MoveUnitField
    value: float
    value_before: float | None = None
    change: float
    velocity: float
    retracted: bool = False


class SteamMove(AvroModel):
    """N books moving one market the same way within one window (curated.steam_moves)."""

    avro_name = "oddsflow.curated.SteamMove"

    move_id: AvroStr
    game_id: AvroStr
    market: MarketField
    direction: SideField
    detected_at: Timestamp
    window_minutes: AvroInt
    books: list[AvroStr]
    first_mover: AvroStr
    first_move_at: Timestamp
    magnitude: float
    unit: MoveUnitField
    confidence: float
    books_quoting: AvroInt
    retracted: bool = False


class SharpSignal(AvroModel):
    """Reverse line movement or sharp action on one side (curated.sharp_signals)."""

    avro_name = "oddsflow.curated.SharpSignal"

    signal_id: AvroStr
    game_id: AvroStr
    market: MarketField
    signal_type: SignalTypeField
    side: SideField
    tier: AvroStr
    event_time: Timestamp
    tickets_pct: float
    money_pct: float | None = None
    bets: AvroLong | None = None
    line_move: float | None = None
    unit: MoveUnitField | None = None
    split_source: AvroStr
    book: AvroStr | None = None
    retracted: bool = False


class Consensus(AvroModel):
    """Cross-book consensus of one side (curated.consensus)."""

    avro_name = "oddsflow.curated.Consensus"

    game_id: AvroStr
    market: MarketField
    side: SideField
    event_time: Timestamp
    median_novig_prob: float
    spread_novig_prob: float
    best_price_american: AvroInt
    best_book: AvroStr
    book_count: AvroInt
    median_line: float | None = None
    retracted: bool = False


class FeatureVector(AvroModel):
    """Model features of one market of one game at one instant (curated.feature_vectors)."""

    avro_name = "oddsflow.curated.FeatureVector"

    game_id: AvroStr
    market: MarketField
    feature_set_version: AvroStr
    event_time: Timestamp
    home_team: AvroStr
    away_team: AvroStr
    sharp_action_score: float
    rlm_indicator: bool
    steam_detected: bool
    line_velocity: float | None = None
    movement_consistency: float | None = None
    cross_book_consensus: float | None = None
    team_sharp_action_history: float | None = None
    actual_outcome: AvroStr | None = None
    profit_loss: float | None = None
    retracted: bool = False
