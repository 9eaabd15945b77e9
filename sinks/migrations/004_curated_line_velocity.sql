-- CURATED zone: line velocity per game x market x side x book (or 'median') x window.
CREATE TABLE IF NOT EXISTS {curated}.line_velocity (
    game_id         text             NOT NULL,
    market          text             NOT NULL,
    side            text             NOT NULL,
    book            text             NOT NULL,
    window_minutes  integer          NOT NULL,
    event_time      timestamptz      NOT NULL,
    unit            text             NOT NULL,
    value           double precision NOT NULL,
    value_before    double precision,
    change          double precision NOT NULL,
    velocity        double precision NOT NULL,
    kafka_topic     text             NOT NULL,
    kafka_partition integer          NOT NULL,
    kafka_offset    bigint           NOT NULL,
    loaded_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, market, side, book, window_minutes, event_time)
);
CREATE INDEX IF NOT EXISTS line_velocity_event_time ON {curated}.line_velocity (event_time);
