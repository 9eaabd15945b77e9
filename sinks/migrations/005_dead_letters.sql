-- OPERATIONAL zone: every record that was not promoted, with its reason. Nothing is dropped.
CREATE TABLE IF NOT EXISTS {operational}.dead_letters (
    stage            text        NOT NULL,
    origin_topic     text        NOT NULL,
    origin_partition integer     NOT NULL,
    origin_offset    bigint      NOT NULL,
    key              bytea,
    original         bytea       NOT NULL,
    error_class      text        NOT NULL,
    reason           text        NOT NULL,
    failed_at        timestamptz NOT NULL,
    kafka_topic      text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stage, origin_topic, origin_partition, origin_offset, error_class, reason)
);
CREATE INDEX IF NOT EXISTS dead_letters_error_class ON {operational}.dead_letters (error_class);
