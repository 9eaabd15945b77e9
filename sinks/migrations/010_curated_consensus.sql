-- CURATED zone: curated.consensus (Consensus). Cross-book consensus for one side of one market of one game, emitted at each change of any book's as-of value.
CREATE TABLE IF NOT EXISTS {curated}.consensus (
    game_id                    text             NOT NULL,
    market                     text             NOT NULL,
    side                       text             NOT NULL,
    event_time                 timestamptz      NOT NULL,
    median_novig_prob          double precision NOT NULL,
    spread_novig_prob          double precision NOT NULL,
    best_price_american        integer          NOT NULL,
    best_book                  text             NOT NULL,
    book_count                 integer          NOT NULL,
    median_line                double precision,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, market, side, event_time)
);
CREATE INDEX IF NOT EXISTS consensus_event_time ON {curated}.consensus (event_time);
