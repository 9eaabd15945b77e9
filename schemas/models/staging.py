"""Typed models of the staging zone (namespace oddsflow.staging)."""

from __future__ import annotations

from schemas.models.common import (
    AvroInt,
    AvroLong,
    AvroModel,
    AvroStr,
    Market,
    MarketField,
    Side,
    SideField,
    Timestamp,
)

__all__ = ["BettingSplit", "Game", "Market", "OddsLine", "Side"]


class OddsLine(AvroModel):
    """One book's price for one side of one market of one game (staging.odds_lines)."""

    avro_name = "oddsflow.staging.OddsLine"

    game_id: AvroStr
    commence_time: Timestamp
    home_team: AvroStr
    away_team: AvroStr
    book: AvroStr
    market: MarketField
    side: SideField
    line: float | None = None
    price_american: AvroInt
    price_decimal: float
    implied_prob: float
    novig_prob: float | None = None
    event_time: Timestamp
    ingested_at: Timestamp
    source: AvroStr
    source_event_id: AvroStr


class BettingSplit(AvroModel):
    """Public tickets/money split on one side of one market (staging.betting_splits)."""

    avro_name = "oddsflow.staging.BettingSplit"

    game_id: AvroStr
    commence_time: Timestamp
    home_team: AvroStr
    away_team: AvroStr
    source: AvroStr
    book: AvroStr
    market: MarketField
    side: SideField
    bets_pct: float
    money_pct: float | None = None
    bets: AvroLong | None = None
    total_bets: AvroLong | None = None
    event_time: Timestamp
    ingested_at: Timestamp
    source_event_id: AvroStr


class Game(AvroModel):
    """Latest state of one game (staging.games, compacted by game id)."""

    avro_name = "oddsflow.staging.Game"

    game_id: AvroStr
    home_team: AvroStr
    away_team: AvroStr
    commence_time: Timestamp
    game_number: AvroInt
    status: AvroStr
    home_score: AvroInt | None = None
    away_score: AvroInt | None = None
    home_pitcher: AvroStr | None = None
    away_pitcher: AvroStr | None = None
    source: AvroStr
    event_time: Timestamp
    ingested_at: Timestamp
    source_event_id: AvroStr
