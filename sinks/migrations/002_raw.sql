-- RAW zone: every payload verbatim; the system of record.
CREATE TABLE IF NOT EXISTS {raw}.odds_envelopes (
    event_id        text        NOT NULL,
    source          text        NOT NULL,
    fetched_at      timestamptz NOT NULL,
    content_type    text        NOT NULL,
    payload         bytea       NOT NULL,
    request         jsonb       NOT NULL,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS odds_envelopes_fetched_at ON {raw}.odds_envelopes (fetched_at);
