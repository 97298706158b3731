-- Aurora PostgreSQL's SQL surface as clients (and the AWS Advanced wrappers) see it: functions in
-- pg_catalog (every user's search path, before any schema of theirs), owned by rdsadmin (the bootstrap
-- superuser), executable by PUBLIC, that no other role may replace or drop. pg_catalog is per
-- database, so this runs in every database at every start (engine/cluster.py), template1 included:
-- databases created later get it from there. Idempotent.
--
-- The values come from settings auroral writes into the server's configuration (auroral.local.conf,
-- defined as sighup settings by the auroral_rds module, so no user can SET them; see
-- engine/aurora.py):
--   auroral.aurora_version       "16.4.0": the cluster's EngineVersion as major.minor.patch
--   auroral.instance_identifier  the DB instance this server is
--   auroral.replicas             one "<server_id> <session_id> [<replica_lag_in_msec>]" per instance,
--                                separated by ";" (the writer's session_id is MASTER_SESSION_ID)
-- Every name below is schema-qualified, operators included (so no NULLIF, IN or other syntax that
-- looks an operator up in the caller's path): the bodies mean the same whatever the caller's path.
-- Not SECURITY DEFINER: nothing here needs privileges a caller lacks.

CREATE OR REPLACE FUNCTION pg_catalog.aurora_version() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN v.s OPERATOR(pg_catalog.<>) '' THEN v.s END
FROM (SELECT pg_catalog.current_setting('auroral.aurora_version', true) AS s) AS v
$$;

-- Aurora documents VARCHAR.
CREATE OR REPLACE FUNCTION pg_catalog.aurora_db_instance_identifier() RETURNS character varying
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN v.s OPERATOR(pg_catalog.<>) '' THEN v.s::pg_catalog.varchar END
FROM (SELECT pg_catalog.current_setting('auroral.instance_identifier', true) AS s) AS v
$$;

-- The documented columns in their documented order. Per row: the writer's durable_lsn is its WAL
-- position; last_update_timestamp is NULL for the instance you are connected to (Aurora 13.9+) and
-- the time of the call for the others; cpu is the storage daemon's CPU, which auroral has none of (0).
-- Columns Aurora marks "not used" or that describe its storage layer are NULL or 0 as on a writer.
CREATE OR REPLACE FUNCTION pg_catalog.aurora_replica_status(
    OUT server_id text,
    OUT session_id text,
    OUT durable_lsn bigint,
    OUT highest_lsn_rcvd bigint,
    OUT current_read_lsn bigint,
    OUT cur_replay_latency_in_usec bigint,
    OUT active_txns integer,
    OUT is_current boolean,
    OUT last_transport_error integer,
    OUT last_error_timestamp timestamp with time zone,
    OUT last_update_timestamp timestamp with time zone,
    OUT feedback_xmin bigint,
    OUT feedback_epoch integer,
    OUT replica_lag_in_msec real,
    OUT log_stream_speed_in_kib_per_second real,
    OUT log_buffer_sequence_number bigint,
    OUT oldest_read_view_trx_id bigint,
    OUT oldest_read_view_lsn bigint,
    OUT pending_read_ios integer,
    OUT read_ios bigint,
    OUT iops integer,
    OUT cpu real)
RETURNS SETOF record
LANGUAGE sql STABLE
AS $$
SELECT r.f[1],
       r.f[2],
       CASE WHEN r.f[2] OPERATOR(pg_catalog.=) 'MASTER_SESSION_ID' AND NOT pg_catalog.pg_is_in_recovery()
            THEN (pg_catalog.pg_current_wal_lsn() OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn)::pg_catalog.int8
       END,
       NULL::pg_catalog.int8,
       NULL::pg_catalog.int8,
       NULL::pg_catalog.int8,
       NULL::pg_catalog.int4,
       true,
       0,
       NULL::pg_catalog.timestamptz,
       CASE WHEN r.f[1] OPERATOR(pg_catalog.=) pg_catalog.current_setting('auroral.instance_identifier', true)
            THEN NULL::pg_catalog.timestamptz ELSE pg_catalog.now() END,
       NULL::pg_catalog.int8,
       NULL::pg_catalog.int4,
       r.f[3]::pg_catalog.float4,
       0::pg_catalog.float4,
       0::pg_catalog.int8,
       NULL::pg_catalog.int8,
       NULL::pg_catalog.int8,
       0,
       0::pg_catalog.int8,
       NULL::pg_catalog.int4,
       0::pg_catalog.float4
FROM (SELECT pg_catalog.string_to_array(pg_catalog.btrim(e.entry), ' ') AS f
      FROM pg_catalog.unnest(pg_catalog.string_to_array(
               pg_catalog.current_setting('auroral.replicas', true), ';')) AS e(entry)
      WHERE pg_catalog.btrim(e.entry) OPERATOR(pg_catalog.<>) '') AS r
$$;

ALTER FUNCTION pg_catalog.aurora_version() OWNER TO rdsadmin;
ALTER FUNCTION pg_catalog.aurora_db_instance_identifier() OWNER TO rdsadmin;
ALTER FUNCTION pg_catalog.aurora_replica_status() OWNER TO rdsadmin;
GRANT EXECUTE ON FUNCTION pg_catalog.aurora_version() TO PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.aurora_db_instance_identifier() TO PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.aurora_replica_status() TO PUBLIC;
