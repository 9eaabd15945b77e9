-- CURATED zone: curated.feature_vectors (FeatureVector). The model features of one market of one game at one instant, for downstream subscribers; outcome fields are filled in after the game is final.
CREATE TABLE IF NOT EXISTS {curated}.feature_vectors (
    game_id                    text             NOT NULL,
    market                     text             NOT NULL,
    feature_set_version        text             NOT NULL,
    event_time                 timestamptz      NOT NULL,
    home_team                  text             NOT NULL,
    away_team                  text             NOT NULL,
    sharp_action_score         double precision NOT NULL,
    rlm_indicator              boolean          NOT NULL,
    steam_detected             boolean          NOT NULL,
    line_velocity              double precision,
    movement_consistency       double precision,
    cross_book_consensus       double precision,
    team_sharp_action_history  double precision,
    actual_outcome             text            ,
    profit_loss                double precision,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, market, feature_set_version, event_time)
);
CREATE INDEX IF NOT EXISTS feature_vectors_event_time ON {curated}.feature_vectors (event_time);
