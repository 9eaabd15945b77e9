-- STAGING zone: staging.games (Game). The latest known state of one game (schedule, status, score, probable pitchers). The topic is compacted by game id: the last record per game is its current state.
CREATE TABLE IF NOT EXISTS {staging}.games (
    game_id                    text             NOT NULL,
    home_team                  text             NOT NULL,
    away_team                  text             NOT NULL,
    commence_time              timestamptz      NOT NULL,
    game_number                integer          NOT NULL,
    status                     text             NOT NULL,
    home_score                 integer         ,
    away_score                 integer         ,
    home_pitcher               text            ,
    away_pitcher               text            ,
    source                     text             NOT NULL,
    event_time                 timestamptz      NOT NULL,
    ingested_at                timestamptz      NOT NULL,
    source_event_id            text             NOT NULL,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id)
);
CREATE INDEX IF NOT EXISTS games_event_time ON {staging}.games (event_time);
