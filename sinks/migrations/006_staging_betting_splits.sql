-- STAGING zone: staging.betting_splits (BettingSplit). The public betting split (tickets and money) on one side of one market of one game, as published by a splits source, validated and normalized. Input of reverse line movement and sharp action.
CREATE TABLE IF NOT EXISTS {staging}.betting_splits (
    game_id                    text             NOT NULL,
    commence_time              timestamptz      NOT NULL,
    home_team                  text             NOT NULL,
    away_team                  text             NOT NULL,
    source                     text             NOT NULL,
    book                       text             NOT NULL,
    market                     text             NOT NULL,
    side                       text             NOT NULL,
    bets_pct                   double precision NOT NULL,
    money_pct                  double precision,
    bets                       bigint          ,
    total_bets                 bigint          ,
    event_time                 timestamptz      NOT NULL,
    ingested_at                timestamptz      NOT NULL,
    source_event_id            text             NOT NULL,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, source, book, market, side, event_time)
);
CREATE INDEX IF NOT EXISTS betting_splits_event_time ON {staging}.betting_splits (event_time);
