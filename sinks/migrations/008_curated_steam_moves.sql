-- CURATED zone: curated.steam_moves (SteamMove). A steam move: at least N books moved the same market of one game in the same direction by at least the threshold within one window W. Announced once per move (a move continues until fewer than N books qualify for a whole window).
CREATE TABLE IF NOT EXISTS {curated}.steam_moves (
    move_id                    text             NOT NULL,
    game_id                    text             NOT NULL,
    market                     text             NOT NULL,
    direction                  text             NOT NULL,
    detected_at                timestamptz      NOT NULL,
    window_minutes             integer          NOT NULL,
    books                      text[]           NOT NULL,
    first_mover                text             NOT NULL,
    first_move_at              timestamptz      NOT NULL,
    magnitude                  double precision NOT NULL,
    unit                       text             NOT NULL,
    confidence                 double precision NOT NULL,
    books_quoting              integer          NOT NULL,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (move_id)
);
CREATE INDEX IF NOT EXISTS steam_moves_game ON {curated}.steam_moves (game_id);
CREATE INDEX IF NOT EXISTS steam_moves_detected_at ON {curated}.steam_moves (detected_at);
