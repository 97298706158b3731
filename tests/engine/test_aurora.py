"""Aurora's SQL surface on real PostgreSQL (each installation): ``aurora_version()``,
``aurora_db_instance_identifier()``, ``aurora_replica_status()`` in ``pg_catalog`` of every database,
owned by ``rdsadmin``; ``rds.extensions`` where the ``auroral_rds`` module is loaded. The master user
and an unprivileged role can call them and can neither replace nor drop them, nor change the settings
behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from auroral.engine import PgServer
from auroral.engine.aurora import Member, Topology, aurora_version

from .conftest import DATABASE, connect, pg_error

APP, APP_PASSWORD = "aurora_app", "Aurora-app-Passw0rd"
COLUMNS = [
    "server_id", "session_id", "durable_lsn", "highest_lsn_rcvd", "current_read_lsn",
    "cur_replay_latency_in_usec", "active_txns", "is_current", "last_transport_error",
    "last_error_timestamp", "last_update_timestamp", "feedback_xmin", "feedback_epoch",
    "replica_lag_in_msec", "log_stream_speed_in_kib_per_second", "log_buffer_sequence_number",
    "oldest_read_view_trx_id", "oldest_read_view_lsn", "pending_read_ios", "read_ios", "iops", "cpu",
]


@pytest.fixture(scope="module")
def writer(server: PgServer, runner: asyncio.Runner) -> Iterator[PgServer]:
    runner.run(server.set_topology(Topology("16.4", "db-writer-1", (Member("db-writer-1"),))))
    with connect(server) as master:
        master.execute(f"CREATE ROLE {APP} LOGIN PASSWORD '{APP_PASSWORD}'".encode())
    yield server


def test_aurora_version_format() -> None:
    assert aurora_version("16.4") == "16.4.0"
    assert aurora_version("13.3.1") == "13.3.1"
    assert aurora_version("17") == "17.0.0"
    assert aurora_version("") == ""


@pytest.mark.parametrize("user", ["master", "app"])
def test_functions_answer_as_on_aurora(writer: PgServer, user: str) -> None:
    login = ("postgres", "Master-Passw0rd!") if user == "master" else (APP, APP_PASSWORD)
    with connect(writer, *login) as conn:
        assert conn.execute("SELECT aurora_version()").fetchone() == ("16.4.0",)
        assert conn.execute("SELECT pg_catalog.aurora_db_instance_identifier()").fetchone() == ("db-writer-1",)
        cur = conn.execute("SELECT * FROM aurora_replica_status()")
        assert [d.name for d in cur.description or ()] == COLUMNS
        rows = cur.fetchall()
        assert len(rows) == 1
        row = dict(zip(COLUMNS, rows[0], strict=True))
        assert row["server_id"] == "db-writer-1" and row["session_id"] == "MASTER_SESSION_ID"
        assert isinstance(row["durable_lsn"], int) and row["durable_lsn"] > 0
        assert row["last_update_timestamp"] is None  # the instance you are connected to (Aurora 13.9+)
        assert row["replica_lag_in_msec"] is None and row["cpu"] == 0
        # the documented join
        joined = conn.execute("SELECT rt.server_id FROM aurora_replica_status() rt, "
                              "aurora_db_instance_identifier() di WHERE rt.server_id = di").fetchall()
        assert joined == [("db-writer-1",)]
        # a search_path of the user's own does not change what they mean
        conn.execute("SET search_path = public")
        assert conn.execute("SELECT aurora_version()").fetchone() == ("16.4.0",)


AURORA_164 = "PostgreSQL 16.4 on x86_64-pc-linux-gnu, compiled by x86_64-pc-linux-gnu-gcc (GCC) 9.5.0, 64-bit"


@pytest.mark.parametrize("user", ["master", "app"])
def test_version_answers_the_engine_version_in_auroras_format(writer: PgServer, user: str) -> None:
    """version() tells the cluster's EngineVersion as Aurora formats it, whatever minor the binaries are;
    SHOW server_version keeps the real one. Nobody but rdsadmin replaces it, in new databases too."""
    login = ("postgres", "Master-Passw0rd!") if user == "master" else (APP, APP_PASSWORD)
    with connect(writer, *login) as conn:
        assert conn.execute("SELECT version()").fetchone() == (AURORA_164,)
        assert conn.execute("SELECT pg_catalog.version()").fetchone() == (AURORA_164,)
        real = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        assert real.split(".")[0] == str(writer.installation.major)
        assert real.split(" ")[0] == writer.installation.version
        error = pg_error(conn, "CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text LANGUAGE sql "
                               "AS $$ SELECT 'x' $$")
        assert error.sqlstate == "42501"
    with connect(writer) as master:
        master.execute(b"CREATE DATABASE aurora_version_later")
        master.execute(b"CREATE DATABASE aurora_version_t0 TEMPLATE template0")  # as pg_restore's users do
        try:
            for dbname in ("aurora_version_later", "aurora_version_t0"):
                with connect(writer, dbname=dbname) as conn:
                    assert conn.execute("SELECT version()").fetchone() == (AURORA_164,), dbname
                    assert conn.execute("SELECT aurora_version()").fetchone() == ("16.4.0",), dbname
        finally:
            master.execute(b"DROP DATABASE aurora_version_later")
            master.execute(b"DROP DATABASE aurora_version_t0")
        assert master.execute("SELECT datallowconn FROM pg_database WHERE datname = 'template0'"
                              ).fetchone() == (False,)


def test_every_database_has_them_owned_by_rdsadmin(writer: PgServer) -> None:
    with connect(writer) as master:
        master.execute(b"CREATE DATABASE aurora_later")
        try:
            for dbname in (DATABASE, "postgres", "aurora_later"):
                with connect(writer, dbname=dbname) as conn:
                    rows = conn.execute(
                        "SELECT p.proname, pg_get_userbyid(p.proowner), p.prosecdef, "
                        "has_function_privilege('public', p.oid, 'EXECUTE') FROM pg_proc p "
                        "WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN "
                        "('aurora_version', 'aurora_db_instance_identifier', 'aurora_replica_status') "
                        "ORDER BY 1").fetchall()
                    assert rows == [("aurora_db_instance_identifier", "rdsadmin", False, True),
                                    ("aurora_replica_status", "rdsadmin", False, True),
                                    ("aurora_version", "rdsadmin", False, True)], dbname
        finally:
            master.execute(b"DROP DATABASE aurora_later")


@pytest.mark.parametrize("user", ["master", "app"])
def test_nobody_but_rdsadmin_replaces_or_drops_them(writer: PgServer, user: str) -> None:
    login = ("postgres", "Master-Passw0rd!") if user == "master" else (APP, APP_PASSWORD)
    with connect(writer, *login) as conn:
        for statement in (
            "CREATE OR REPLACE FUNCTION pg_catalog.aurora_version() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
            "DROP FUNCTION pg_catalog.aurora_db_instance_identifier()",
            "ALTER FUNCTION pg_catalog.aurora_replica_status() RENAME TO gone",
            "ALTER FUNCTION pg_catalog.aurora_version() OWNER TO CURRENT_USER",
        ):
            error = pg_error(conn, statement)
            assert error.sqlstate == "42501", (statement, error)
        conn.execute(b"REVOKE EXECUTE ON FUNCTION pg_catalog.aurora_version() FROM PUBLIC")  # a warning: none
        assert conn.execute("SELECT has_function_privilege('public', 'pg_catalog.aurora_version()', "
                            "'EXECUTE')").fetchone() == (True,)
        assert conn.execute("SELECT aurora_version()").fetchone() == ("16.4.0",)


def test_settings_behind_them_are_not_the_users(writer: PgServer) -> None:
    if not writer.installation.preload:
        pytest.skip("the auroral_rds module could not be built for this PostgreSQL (no server headers)")
    with connect(writer) as master:
        for statement in ("SET auroral.instance_identifier = 'other'", "SET rds.extensions = 'x'",
                          "ALTER DATABASE app SET auroral.replicas = 'other MASTER_SESSION_ID'",
                          "ALTER ROLE CURRENT_USER SET auroral.aurora_version = '1.0.0'"):
            error = pg_error(master, statement)
            assert error.sqlstate == "55P02", (statement, error)  # cannot be changed now
        row = master.execute("SELECT setting, context FROM pg_settings WHERE name = 'rds.extensions'").fetchone()
        assert row is not None and row[1] == "sighup"
        assert "aurora_stat_utils" in row[0].split(",") and "plpgsql" in row[0].split(",")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=str(writer.socket_dir), port=writer.port, user=APP, password=APP_PASSWORD,
                        dbname=DATABASE, options="-c auroral.instance_identifier=other").close()


def test_topology_changes_reach_new_sessions(writer: PgServer, runner: asyncio.Runner) -> None:
    runner.run(writer.set_topology(Topology("16.4", "db-writer-2", (Member("db-writer-2"),))))
    try:
        with connect(writer, APP, APP_PASSWORD) as conn:
            assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == ("db-writer-2",)
            assert conn.execute("SELECT server_id FROM aurora_replica_status()").fetchall() == [("db-writer-2",)]
    finally:
        runner.run(writer.set_topology(Topology("16.4", "db-writer-1", (Member("db-writer-1"),))))


def test_every_start_installs_them_whatever_the_database_owner_set(
        writer: PgServer, runner: asyncio.Runner) -> None:
    """A data directory from before the functions (here: dropped by rdsadmin) gets them at its next
    start, even in a database whose owner set a search path of their own (with an impostor type named
    ``text``), read-only transactions and a role for every session."""
    runner.run(writer.run_admin_sql("DROP FUNCTION pg_catalog.aurora_version()", dbname=DATABASE))
    with connect(writer) as master:
        assert pg_error(master, "SELECT aurora_version()").sqlstate == "42883"
        master.execute(b"CREATE SCHEMA trap")
        master.execute(b"CREATE DOMAIN trap.text AS pg_catalog.text CHECK (false)")
        master.execute(f"ALTER DATABASE {DATABASE} SET search_path = trap, pg_catalog".encode())
        master.execute(f"ALTER DATABASE {DATABASE} SET default_transaction_read_only = on".encode())
        master.execute(f"ALTER DATABASE {DATABASE} SET role = {APP}".encode())
    try:
        runner.run(writer.restart())
        with connect(writer, APP, APP_PASSWORD) as conn:
            assert conn.execute("SELECT pg_catalog.aurora_version()").fetchone() == ("16.4.0",)
            assert conn.execute("SELECT pg_catalog.format_type(prorettype, NULL) FROM pg_catalog.pg_proc "
                                "WHERE proname = 'aurora_version'").fetchone() == ("text",)
    finally:
        with connect(writer, dbname="postgres") as master:
            master.execute(f"ALTER DATABASE {DATABASE} RESET ALL".encode())
        with connect(writer) as master:
            master.execute(b"DROP SCHEMA trap CASCADE")
