-- version() as Aurora answers it: the cluster's EngineVersion (major.minor), not the minor auroral's binaries
-- have (the newest of that major auroral has: "16.15" serves EngineVersion 16.4). Aurora's format, e.g. the
-- AWS documentation's "PostgreSQL 13.3 on x86_64-pc-linux-gnu, compiled by x86_64-pc-linux-gnu-gcc (GCC)
-- 7.4.0, 64-bit"; the compiler differs between Aurora releases (7.4.0 on 13/14, 9.5.0 seen on 15;
-- unconfirmed for 16+, where 9.5.0 is kept). SHOW server_version and server_version_num (what psql, pg_dump
-- and drivers compare) keep the real minor of the right major: only this function tells the Aurora version.
--
-- It takes the place of the built-in pg_catalog.version() in every database at every start (engine/aurora.py),
-- template1 included, so new databases have it too. Replacing the built-in in place would not do: PostgreSQL
-- calls a built-in function's C code by its OID whatever pg_proc says, and cannot drop it (pinned). So the
-- built-in is renamed pg_catalog.postgresql_version() (the real version string, for administrators; it tells
-- nothing SHOW server_version does not) and a function of a new OID takes the name.
-- The version comes from auroral.aurora_version ("16.4.0", see aurora.sql); without it (no topology told
-- yet) the server's own version is shown in the same format. Every name is schema-qualified.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_proc p
               WHERE p.proname OPERATOR(pg_catalog.=) 'version'
                 AND p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
                 AND p.pronargs OPERATOR(pg_catalog.=) 0
                 AND p.prosrc OPERATOR(pg_catalog.=) 'pgsql_version') THEN
        ALTER FUNCTION pg_catalog.version() RENAME TO postgresql_version;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT pg_catalog.concat('PostgreSQL ', w.ver, ' on x86_64-pc-linux-gnu, compiled by x86_64-pc-linux-gnu-gcc (GCC) ',
                         CASE WHEN w.major OPERATOR(pg_catalog.<=) 14 THEN '7.4.0' ELSE '9.5.0' END, ', 64-bit')
FROM (SELECT v.ver, pg_catalog.split_part(v.ver, '.', 1)::pg_catalog.int4 AS major
      FROM (SELECT CASE WHEN a.s OPERATOR(pg_catalog.~) '^[0-9]+[.][0-9]+'
                        THEN pg_catalog.concat(pg_catalog.split_part(a.s, '.', 1), '.',
                                               pg_catalog.split_part(a.s, '.', 2))
                        ELSE pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1)
                   END AS ver
            FROM (SELECT COALESCE(pg_catalog.current_setting('auroral.aurora_version', true), '') AS s) AS a
           ) AS v
     ) AS w
$$;
ALTER FUNCTION pg_catalog.version() OWNER TO rdsadmin;
GRANT EXECUTE ON FUNCTION pg_catalog.version() TO PUBLIC;
