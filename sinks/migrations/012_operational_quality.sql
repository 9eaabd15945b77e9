-- OPERATIONAL zone: operational.quality (QualityReport). Data quality of one source at one stage over one minute of processing: counts balance as records_in = promoted + deduplicated + dead_lettered.
CREATE TABLE IF NOT EXISTS {operational}.quality (
    source                     text             NOT NULL,
    stage                      text             NOT NULL,
    window_start               timestamptz      NOT NULL,
    records_in                 bigint           NOT NULL,
    promoted                   bigint           NOT NULL,
    deduplicated               bigint           NOT NULL,
    dead_lettered              bigint           NOT NULL,
    pass_rate                  double precision NOT NULL,
    mean_score                 double precision,
    completeness               double precision,
    accuracy                   double precision,
    consistency                double precision,
    timeliness                 double precision,
    emitted_at                 timestamptz      NOT NULL,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (source, stage, window_start)
);
CREATE INDEX IF NOT EXISTS quality_window_start ON {operational}.quality (window_start);
