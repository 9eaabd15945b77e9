-- CURATED zone: curated.sharp_signals (SharpSignal). A sharp-money signal on one side of one market of one game: reverse line movement (the line moves toward the ticket minority) or sharp action (money share well above ticket share).
CREATE TABLE IF NOT EXISTS {curated}.sharp_signals (
    signal_id                  text             NOT NULL,
    game_id                    text             NOT NULL,
    market                     text             NOT NULL,
    signal_type                text             NOT NULL,
    side                       text             NOT NULL,
    tier                       text             NOT NULL,
    event_time                 timestamptz      NOT NULL,
    tickets_pct                double precision NOT NULL,
    money_pct                  double precision,
    bets                       bigint          ,
    line_move                  double precision,
    unit                       text            ,
    split_source               text             NOT NULL,
    book                       text            ,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (signal_id)
);
CREATE INDEX IF NOT EXISTS sharp_signals_game ON {curated}.sharp_signals (game_id);
CREATE INDEX IF NOT EXISTS sharp_signals_event_time ON {curated}.sharp_signals (event_time);
