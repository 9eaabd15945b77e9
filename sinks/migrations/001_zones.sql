-- The four zones of the roadmap and the operational tables every stage relies on.
CREATE SCHEMA IF NOT EXISTS {raw};
CREATE SCHEMA IF NOT EXISTS {staging};
CREATE SCHEMA IF NOT EXISTS {curated};
CREATE SCHEMA IF NOT EXISTS {operational};

-- Where each sink consumer group is in each partition. Written in the same transaction as the
-- rows, so rows and position can never disagree (exactly-once effect).
CREATE TABLE IF NOT EXISTS {operational}.sink_offsets (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- One row per pipeline run (demo, `pipeline run`, backfills): what ran and what it did.
CREATE TABLE IF NOT EXISTS {operational}.pipeline_runs (
    run_id      text        PRIMARY KEY,
    command     text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text        NOT NULL,
    summary     jsonb       NOT NULL DEFAULT '{{}}'::jsonb
);
