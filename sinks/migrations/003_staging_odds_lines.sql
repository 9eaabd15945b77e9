-- STAGING zone: validated, normalized, de-duplicated price changes.
CREATE TABLE IF NOT EXISTS {staging}.odds_lines (
    game_id         text             NOT NULL,
    commence_time   timestamptz      NOT NULL,
    home_team       text             NOT NULL,
    away_team       text             NOT NULL,
    book            text             NOT NULL,
    market          text             NOT NULL,
    side            text             NOT NULL,
    line            double precision,
    price_american  integer          NOT NULL,
    price_decimal   double precision NOT NULL,
    implied_prob    double precision NOT NULL,
    novig_prob      double precision,
    event_time      timestamptz      NOT NULL,
    ingested_at     timestamptz      NOT NULL,
    source          text             NOT NULL,
    source_event_id text             NOT NULL,
    kafka_topic     text             NOT NULL,
    kafka_partition integer          NOT NULL,
    kafka_offset    bigint           NOT NULL,
    loaded_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, book, market, side, event_time)
);
CREATE INDEX IF NOT EXISTS odds_lines_event_time ON {staging}.odds_lines (event_time);
