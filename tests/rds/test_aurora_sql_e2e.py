"""Aurora's SQL surface through a real endpoint (PostgreSQL 16+ behind the gateway, with ``auroral_rds``):
``aurora_version()``, ``aurora_db_instance_identifier()``, ``aurora_replica_status()``, ``rds.extensions``
and ``inet_server_addr()`` answer as on Aurora for the master user and for an unprivileged application
role, neither of which can replace or drop them; and the AWS Advanced Python Wrapper recognises the
cluster as Aurora PostgreSQL (its dialect detection and topology queries), quickly."""

from __future__ import annotations

import socket
import time
from typing import Any

import psycopg
import pytest
from psycopg import errors

from .e2e_helpers import ENGINE_VERSION, create_db, delete_db

APP, APP_PASSWORD = "app_reader", "App-reader-pass-1"


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def db(rds: Any) -> Any:
    db = create_db(rds, prefix="e2e-aur")
    with db.connect() as master:
        master.execute(f"CREATE ROLE {APP} LOGIN PASSWORD '{APP_PASSWORD}'".encode())
    yield db
    delete_db(rds, db)


def _preloaded(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("SELECT count(*) FROM pg_settings WHERE name = 'rds.extensions'").fetchone() == (1,)


@pytest.mark.parametrize("user", ["master", "app"])
def test_functions_answer_as_on_aurora(db: Any, user: str) -> None:
    login = {} if user == "master" else {"user": APP, "password": APP_PASSWORD}
    with db.connect(**login) as conn:
        assert conn.execute("SELECT aurora_version()").fetchone() == (ENGINE_VERSION + ".0",)
        assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == (db.instance_id,)
        rows = conn.execute(
            "SELECT server_id, session_id, replica_lag_in_msec, last_update_timestamp, cpu "
            "FROM aurora_replica_status()").fetchall()
        assert rows == [(db.instance_id, "MASTER_SESSION_ID", None, None, 0.0)]
        # the endpoint the client connected to, as inet_server_addr()/inet_server_port() report it
        assert conn.execute("SELECT host(inet_server_addr()), inet_server_port()").fetchone() == (
            socket.gethostbyname(db.host), db.port)
        if not _preloaded(conn):
            pytest.skip("the auroral_rds module could not be built on this host")
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = 'rds.extensions'").fetchone()
        assert row is not None and "aurora_stat_utils" in row[0].split(",")
        with pytest.raises(errors.CantChangeRuntimeParam):
            conn.execute("SET auroral.instance_identifier = 'someone-else'")


@pytest.mark.parametrize("user", ["master", "app"])
def test_application_cannot_redefine_or_drop_them(db: Any, user: str) -> None:
    login = {} if user == "master" else {"user": APP, "password": APP_PASSWORD}
    with db.connect(**login) as conn:
        for statement in (
            "CREATE OR REPLACE FUNCTION pg_catalog.aurora_db_instance_identifier() RETURNS varchar "
            "LANGUAGE sql AS $$ SELECT 'impostor'::varchar $$",
            "DROP FUNCTION pg_catalog.aurora_replica_status()",
            "ALTER FUNCTION pg_catalog.aurora_version() RENAME TO old_version",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement.encode())
        # a function of the user's own cannot shadow them: pg_catalog comes first
        conn.execute("CREATE SCHEMA IF NOT EXISTS mine" if user == "master" else "SELECT 1")
        if user == "master":
            conn.execute("CREATE OR REPLACE FUNCTION mine.aurora_db_instance_identifier() RETURNS varchar "
                         "LANGUAGE sql AS $$ SELECT 'impostor'::varchar $$")
            conn.execute("SET search_path = mine, public")
        assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == (db.instance_id,)


def test_aws_wrapper_detects_aurora_postgresql(db: Any) -> None:
    import aws_advanced_python_wrapper as wrapper
    from aws_advanced_python_wrapper.database_dialect import AuroraPgDialect

    with db.connect() as conn:
        if not _preloaded(conn):
            pytest.skip("the auroral_rds module could not be built on this host")
    started = time.monotonic()
    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect,
        f"host={db.host} port={db.port} dbname={db.database} user={APP} password={APP_PASSWORD} "
        "sslmode=require connect_timeout=10",
        plugins="", autocommit=True)
    try:
        elapsed = time.monotonic() - started
        service = conn._plugin_service
        assert isinstance(service.database_dialect, AuroraPgDialect)
        with conn.cursor() as cursor:
            cursor.execute("SELECT aurora_db_instance_identifier()")
            assert cursor.fetchone() == (db.instance_id,)
        # connected by the cluster endpoint's name, the wrapper knows the instance names from it
        # (RdsUtils: ``?.<id>.<region>.rds.amazonaws.com``) and the topology from aurora_replica_status()
        service.force_refresh_host_list(conn.target_connection)
        topology = service.hosts
        instance_name = db.host.replace(".cluster-", ".", 1).replace(db.cluster_id, db.instance_id, 1)
        assert [(h.host, h.host_id, h.role.name) for h in topology] == [(instance_name, db.instance_id, "WRITER")]
        assert elapsed < 5, f"connecting took {elapsed:.1f} s"
    finally:
        conn.close()
        # the wrapper's topology monitors are threads that keep the process alive until released
        wrapper.release_resources()
