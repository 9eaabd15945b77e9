-- OPERATIONAL zone: operational.pipeline_events (PipelineEvent). A lifecycle or run event of a pipeline worker: the audit trail of what ran, when, and how it ended.
CREATE TABLE IF NOT EXISTS {operational}.pipeline_events (
    event_id                   text             NOT NULL,
    stage                      text             NOT NULL,
    kind                       text             NOT NULL,
    at                         timestamptz      NOT NULL,
    worker                     text             NOT NULL,
    details                    jsonb            NOT NULL,
    kafka_topic                text             NOT NULL,
    kafka_partition            integer          NOT NULL,
    kafka_offset               bigint           NOT NULL,
    loaded_at                  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id)
);
CREATE INDEX IF NOT EXISTS pipeline_events_at ON {operational}.pipeline_events (at);
