-- Least-privilege roles, so no reader or writer needs the owner's (superuser's) login.
--   oddsflow_analyst          reads the CURATED zone ({curated}) and nothing else: for analysts
--                             and subscribers.
--   oddsflow_sink_<zone>      a sink that serves one zone: reads and writes (insert, upsert, and
--                             the retention purge's delete) that zone's tables, plus its
--                             bookkeeping ({operational}.sink_offsets and .dead_letters); no other
--                             table, no DDL.
--   oddsflow_sink             the generic sink serving every zone: member of the four above.
-- Roles are cluster-wide and NOLOGIN: grant them to login users
-- (GRANT oddsflow_analyst TO alice). Created only when missing, so every database and every set
-- of zone schemas in the cluster can run this file; a migration user without CREATEROLE skips
-- the roles with a notice rather than failing the migration.
DO $$
DECLARE
    can_create boolean;
    missing    text[];
    r          text;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO can_create FROM pg_roles WHERE rolname = current_user;
    SELECT array_agg(name) INTO missing
    FROM unnest(ARRAY['oddsflow_analyst', 'oddsflow_sink', 'oddsflow_sink_raw',
                      'oddsflow_sink_staging', 'oddsflow_sink_curated',
                      'oddsflow_sink_operational']) AS name
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name);
    IF missing IS NULL THEN
        RETURN;
    END IF;
    IF NOT can_create THEN
        RAISE NOTICE 'oddsflow: % cannot create roles; missing roles not created: %',
            current_user, missing;
        RETURN;
    END IF;
    FOREACH r IN ARRAY missing LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object THEN
            NULL;  -- another database's migration created it meanwhile
        END;
    END LOOP;
END
$$;

DO $$
DECLARE
    zone record;
BEGIN
    IF (SELECT count(*) FROM pg_roles
        WHERE rolname IN ('oddsflow_analyst', 'oddsflow_sink', 'oddsflow_sink_raw',
                          'oddsflow_sink_staging', 'oddsflow_sink_curated',
                          'oddsflow_sink_operational')) < 6 THEN
        RETURN;  -- roles could not be created (notice above)
    END IF;

    -- Analyst: the curated zone, read only.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO oddsflow_analyst', '{curated}');
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO oddsflow_analyst', '{curated}');
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES'
                   ' TO oddsflow_analyst', '{curated}');

    -- One sink role per zone: its own tables, read and write, nothing else.
    FOR zone IN SELECT * FROM (VALUES ('oddsflow_sink_raw', '{raw}'),
                                      ('oddsflow_sink_staging', '{staging}'),
                                      ('oddsflow_sink_curated', '{curated}'),
                                      ('oddsflow_sink_operational', '{operational}'))
                AS z(role, schema)
    LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', zone.schema, zone.role);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                       zone.schema, zone.role);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                       zone.schema, zone.role);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                       ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                       zone.schema, zone.role);
        -- The sink's bookkeeping lives in the operational zone, whatever zone it serves.
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', '{operational}', zone.role);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.sink_offsets, %I.dead_letters'
                       ' TO %I',
                       '{operational}', '{operational}', zone.role);
        EXECUTE format('GRANT %I TO oddsflow_sink', zone.role);
    END LOOP;
END
$$;
