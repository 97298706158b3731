"""Aurora's extensions on real PostgreSQL, every major: what the master (rds_superuser) may create through
auroral_rds, what rds.allowed_extensions narrows, and that neither the elevated run nor dblink/postgres_fdw
gives a way to superuser, rdsadmin or the local socket without a password."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from auroral.engine import PgServer
from auroral.engine.aurora import extension_names
from auroral.engine.extensions import supported

from .conftest import ADMIN_PASSWORD, MASTER, MASTER_PASSWORD, connect, pg_error

ESCALATED = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"


@pytest.fixture(autouse=True)
def needs_module(server: PgServer) -> None:
    if not server.installation.preload:
        pytest.skip("auroral_rds could not be built for this installation")


@pytest.fixture
def scratch(server: PgServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The master in a database of its own (dropped after the test)."""
    with connect(server) as master:
        master.execute("DROP DATABASE IF EXISTS extdb")
        master.execute("CREATE DATABASE extdb")
    try:
        with connect(server, dbname="extdb") as conn:
            yield conn
    finally:
        with connect(server) as master:
            master.execute("DROP DATABASE extdb WITH (FORCE)")


def _shipped(server: PgServer) -> list[str]:
    return supported(server.major, extension_names(server.installation.sharedir))


def test_settings_as_on_aurora(server: PgServer, master: psycopg.Connection[tuple[object, ...]]) -> None:
    listed = str(master.execute("SHOW rds.extensions").fetchone()[0]).split(",")  # type: ignore[index]
    assert set(_shipped(server)) | {"aurora_stat_utils"} == set(listed)
    assert {"pg_stat_statements", "postgres_fdw", "dblink"} <= set(listed)  # pgcrypto: not in every build
    assert not {"file_fdw", "adminpack", "plpython3u"} & set(listed)
    assert master.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
    assert master.execute("SHOW rds.allowed_extensions").fetchone() == ("*",)
    err = pg_error(master, "SET rds.allowed_extensions = 'x'")
    assert err.sqlstate == "55P02"  # a sighup setting: only auroral's configuration file sets it


def test_master_creates_every_supported_extension(server: PgServer,
                                                  scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    created = []
    for name in _shipped(server):
        try:
            scratch.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}" CASCADE'.encode())
        except psycopg.errors.UndefinedFile as exc:
            # a shared library the host lacks (uuid-ossp's libossp-uuid): the installation's defect,
            # not a permission; anything else fails the test
            assert "could not load library" in str(exc), name
            continue
        created.append(name)
        owner = scratch.execute("SELECT extowner::regrole::text FROM pg_extension WHERE extname = %s",
                                (name,)).fetchone()
        assert owner is not None, name
        if name != "plpgsql":
            assert owner == (MASTER,), name
    assert scratch.execute(ESCALATED).fetchone() == (False,)
    # the owner drops them (the extensions' objects are rdsadmin's, as for a trusted extension)
    assert {"pg_stat_statements", "postgres_fdw", "dblink", "hstore", "citext"} <= set(created)
    for name in created:
        if name != "plpgsql":
            scratch.execute(f'DROP EXTENSION IF EXISTS "{name}" CASCADE'.encode())


def test_pg_stat_statements_read_and_reset(server: PgServer, scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    scratch.execute("CREATE EXTENSION pg_stat_statements")
    with connect(server, "rdsadmin", ADMIN_PASSWORD, "extdb") as admin:
        admin.execute("SELECT 1 AS admin_marker_query")
    rows = scratch.execute("SELECT query FROM pg_stat_statements WHERE query LIKE %s",
                           ("%admin_marker_query%",)).fetchall()
    assert rows
    scratch.execute("SELECT pg_stat_statements_reset()")
    assert scratch.execute("SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s",
                           ("%admin_marker_query%",)).fetchone() == (0,)
    scratch.execute("ALTER EXTENSION pg_stat_statements UPDATE")
    scratch.execute("SELECT pg_stat_statements_reset()")
    err = pg_error(scratch, "ALTER FUNCTION pg_stat_statements_reset SECURITY DEFINER")
    assert err.sqlstate == "42501"  # rdsadmin's object


def test_other_users_get_stock_rules(server: PgServer, scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    scratch.execute("CREATE ROLE plain LOGIN PASSWORD 'Plain-Passw0rd'")
    scratch.execute("GRANT CREATE ON DATABASE extdb TO plain")
    try:
        with connect(server, "plain", "Plain-Passw0rd", "extdb") as plain:
            plain.execute("CREATE EXTENSION citext")  # trusted: PostgreSQL's own rule
            err = pg_error(plain, "CREATE EXTENSION pg_stat_statements")
            assert err.sqlstate == "42501"
            plain.execute("DROP EXTENSION citext")
    finally:
        scratch.execute("REVOKE ALL ON DATABASE extdb FROM plain")
        scratch.execute("DROP ROLE plain")


def test_allowed_extensions_narrows(server: PgServer, runner: asyncio.Runner,
                                    scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    change = runner.run(server.set_parameters({"rds.allowed_extensions": "hstore, earthdistance"}))
    assert change.applied == ["rds.allowed_extensions"]  # dynamic: a reload
    try:
        assert scratch.execute("SHOW rds.allowed_extensions").fetchone() == ("hstore, earthdistance",)
        scratch.execute("CREATE EXTENSION hstore")
        for statement, name in (("CREATE EXTENSION citext", "citext"),
                                ("CREATE EXTENSION pg_stat_statements", "pg_stat_statements"),
                                ("CREATE EXTENSION earthdistance CASCADE", "cube")):  # CASCADE brings in cube
            err = pg_error(scratch, statement)
            assert err.sqlstate == "42501", statement
            assert err.diag.message_primary == f'permission denied to create extension "{name}"'
            assert err.diag.message_hint == 'This extension is not specified in "rds.allowed_extensions".'
        assert scratch.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall() == [
            ("hstore",), ("plpgsql",)]
    finally:
        runner.run(server.set_parameters({"rds.allowed_extensions": None}))
    scratch.execute("CREATE EXTENSION citext")


def test_shared_preload_libraries_parameter(server: PgServer, runner: asyncio.Runner) -> None:
    from auroral.engine import ParameterError

    with pytest.raises(ParameterError, match="not allowed"):
        runner.run(server.set_parameters({"shared_preload_libraries": "pg_stat_statements,auroral_rds"}))
    with pytest.raises(ParameterError, match="not allowed"):
        runner.run(server.set_parameters({"shared_preload_libraries": "/tmp/evil"}))


def test_dblink_and_fdw_never_reach_the_server_without_a_password(
        server: PgServer, scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    scratch.execute("CREATE EXTENSION dblink")
    scratch.execute("CREATE EXTENSION postgres_fdw")
    sock = f"host={server.socket_dir} port={server.port}"
    # the master's own password works: the extensions are usable
    assert scratch.execute(
        "SELECT * FROM dblink(%s, 'SELECT 41 + 1') AS t(x int)",
        (f"{sock} dbname=extdb user={MASTER} password={MASTER_PASSWORD}",)).fetchone() == (42,)
    for conninfo in (f"{sock} dbname=postgres user=rdsadmin",
                     f"{sock} dbname=postgres user=rdsadmin password=wrong",
                     f"{sock} dbname=postgres user=rdsrepladmin password=x",  # peer for the server's OS user
                     f"{sock} dbname=postgres user={MASTER}",
                     f"host=127.0.0.1 port={server.port} dbname=postgres user=rdsadmin password=x",
                     "host=localhost dbname=postgres user=rdsadmin"):
        err = pg_error(scratch, f"SELECT dblink_connect('x', '{conninfo}')")
        assert err.sqlstate in ("2F003", "08001", "28P01", "42501"), conninfo
        assert scratch.execute("SELECT dblink_get_connections()").fetchone() == (None,)
    err = pg_error(scratch, f"SELECT dblink_connect_u('x', '{sock} dbname=postgres user=rdsadmin')")
    assert err.sqlstate == "42501"

    scratch.execute(f"CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw "
                    f"OPTIONS (host '{server.socket_dir}', port '{server.port}', dbname 'postgres')")
    err = pg_error(scratch, "CREATE USER MAPPING FOR CURRENT_USER SERVER loop "
                            "OPTIONS (user 'rdsadmin', password_required 'false')")
    assert err.sqlstate == "42501"  # only a superuser may waive the password
    scratch.execute("CREATE FOREIGN TABLE remote_roles (rolname name) SERVER loop "
                    "OPTIONS (schema_name 'pg_catalog', table_name 'pg_authid')")
    for options in ("user 'rdsadmin'", "user 'rdsrepladmin', password 'x'", "user 'rdsadmin', password 'wrong'"):
        scratch.execute(f"CREATE USER MAPPING FOR CURRENT_USER SERVER loop OPTIONS ({options})")
        err = pg_error(scratch, "SELECT * FROM remote_roles")
        assert err.sqlstate in ("2F003", "08001", "28P01"), options
        scratch.execute("DROP USER MAPPING FOR CURRENT_USER SERVER loop")
    assert scratch.execute(ESCALATED).fetchone() == (False,)


def test_elevated_scripts_give_no_escape(server: PgServer, scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    """Booby traps in schemas the master owns, where the extensions' scripts run as rdsadmin: overloads of
    functions and operators a script might resolve to (search_path), objects a script would CREATE OR
    REPLACE (CVE-2022-2625), a schema name that breaks out of quotes (CVE-2023-39417)."""
    trap = f"BEGIN ALTER ROLE {MASTER} SUPERUSER; RETURN $1; END"
    scratch.execute("CREATE SCHEMA trap")
    for schema in ("public", "trap"):
        for fn, args in (("lower", "varchar"), ("upper", "varchar"), ("length", "varchar"),
                         ("current_setting", "varchar"), ("btrim", "varchar"), ("array_to_string", "anyarray")):
            ret = "text" if args == "anyarray" else args
            body = trap if args != "anyarray" else trap.replace("$1", "''")
            scratch.execute(f"CREATE FUNCTION {schema}.{fn}({args}) RETURNS {ret} LANGUAGE plpgsql AS $t${body}$t$")
        scratch.execute(f"CREATE FUNCTION {schema}.trap_eq(text, varchar) RETURNS boolean LANGUAGE plpgsql "
                        f"AS $t$BEGIN ALTER ROLE {MASTER} SUPERUSER; RETURN true; END$t$")
        scratch.execute(f"CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = varchar, FUNCTION = {schema}.trap_eq)")
    # objects with the names an extension's update scripts replace
    scratch.execute("CREATE FUNCTION public.pg_buffercache_pages() RETURNS SETOF record LANGUAGE plpgsql AS "
                    f"$t$BEGIN ALTER ROLE {MASTER} SUPERUSER; END$t$")
    err = pg_error(scratch, "CREATE EXTENSION pg_buffercache VERSION '1.0'")
    assert err.sqlstate in ("42723", "55000", "42P13", "22023", "42501")
    scratch.execute("DROP FUNCTION public.pg_buffercache_pages()")
    for name in _shipped(server):
        if name == "plpgsql":
            continue
        for schema in ("public", "trap"):
            try:
                scratch.execute(f'CREATE EXTENSION "{name}" SCHEMA {schema} CASCADE'.encode())
                scratch.execute(f'DROP EXTENSION "{name}" CASCADE'.encode())
            except psycopg.Error:
                pass  # a fixed-schema extension, or one refusing the traps: either way no escape
            assert scratch.execute(ESCALATED).fetchone() == (False,), name
    # a schema name that closes the quotes @extschema@ is substituted into
    scratch.execute('CREATE SCHEMA "x\'; ALTER ROLE postgres SUPERUSER; --"')
    for name in ("pg_stat_statements", "pgcrypto", "dblink", "pgstattuple"):
        try:
            scratch.execute(f'CREATE EXTENSION {name} SCHEMA "x\'; ALTER ROLE postgres SUPERUSER; --"'.encode())
            scratch.execute(f"DROP EXTENSION {name}".encode())
        except psycopg.Error:
            pass
        assert scratch.execute(ESCALATED).fetchone() == (False,), name


def test_not_into_the_system_schemas(scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement in ("CREATE EXTENSION dblink SCHEMA pg_catalog",
                      "SET search_path = pg_catalog; CREATE EXTENSION pg_stat_statements",
                      "SET search_path = pg_temp; CREATE EXTENSION pgstattuple"):
        with pytest.raises(psycopg.Error) as info:
            scratch.execute(statement.encode())
        if "pg_temp" not in statement:  # there PostgreSQL's script fails first (its functions not found)
            assert info.value.sqlstate == "42501", statement
            assert "permission denied to create" in info.value.diag.message_primary, statement
        scratch.execute("RESET search_path")
    assert scratch.execute("SELECT extname FROM pg_extension").fetchall() == [("plpgsql",)]
