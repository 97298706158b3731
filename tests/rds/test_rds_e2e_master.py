"""Aurora's database-level security model, end to end: the master user's exact attributes,
``rds_superuser``, a protected ``rdsadmin``, least-privilege application roles, and resetting the
master user with ModifyDBCluster — through psycopg and psql at the cluster endpoint."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server

from .e2e_helpers import MASTER, Db, create_db, delete_db, ident, psql, until, wait_status

# rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolvaliduntil
MASTER_ATTRIBUTES = (False, True, True, True, True, False, "infinity")
ATTRIBUTES_SQL = (
    "SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,"
    " rolvaliduntil::text FROM pg_roles WHERE rolname = %s"
)
MEMBER_OF_SQL = (
    "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
    " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY 1"
)


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def db(rds: Any) -> Iterator[Db]:
    created = create_db(rds, prefix="e2e-master")
    yield created
    delete_db(rds, created)


def _attributes(conn: psycopg.Connection[Any], role: str) -> tuple[str, ...]:
    row = conn.execute(ATTRIBUTES_SQL, (role,)).fetchone()
    assert row is not None, role
    return tuple(row)


def _member_of(conn: psycopg.Connection[Any], role: str) -> list[str]:
    return [r[0] for r in conn.execute(MEMBER_OF_SQL, (role,)).fetchall()]


def test_master_user_attributes_and_rds_superuser(db: Db) -> None:
    with db.connect() as conn:
        assert _attributes(conn, MASTER) == MASTER_ATTRIBUTES
        assert "rds_superuser" in _member_of(conn, MASTER)
        assert set(_member_of(conn, "rds_superuser")) >= {
            "pg_monitor", "pg_signal_backend", "rds_replication", "rds_password"}
        rds_superuser = conn.execute(
            "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'rds_superuser'").fetchone()
        assert rds_superuser == (False, False)
        admin = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'rdsadmin'").fetchone()
        assert admin == (True,)
        for role in ("rds_replication", "rds_password", "rds_iam"):
            assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (1,), role
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").fetchone()
        assert owner == (MASTER,)


def test_least_privilege_app_role(db: Db) -> None:
    app, app_password = ident("app").replace("-", "_"), "App-pass-123"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {app} LOGIN PASSWORD '{app_password}'")
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, item text)")
        conn.execute("INSERT INTO orders VALUES (1, 'book') ON CONFLICT DO NOTHING")
        conn.execute(f"GRANT SELECT ON orders TO {app}")
        with db.connect(app, app_password) as app_conn:
            assert app_conn.execute("SELECT item FROM orders WHERE id = 1").fetchone() == ("book",)
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table orders"):
                app_conn.execute("INSERT INTO orders VALUES (2, 'pen')")
            with pytest.raises(errors.InsufficientPrivilege):
                app_conn.execute("CREATE ROLE sneaky")
            # the master sees the application's session and may terminate it
            app_pid = app_conn.info.backend_pid
            seen = conn.execute(
                "SELECT usename, query FROM pg_stat_activity WHERE pid = %s", (app_pid,)).fetchone()
            assert seen is not None and seen[0] == app
            assert seen[1] != "<insufficient privilege>"
            assert conn.execute("SELECT pg_terminate_backend(%s)", (app_pid,)).fetchone() == (True,)
            with pytest.raises(psycopg.OperationalError):
                app_conn.execute("SELECT 1")
        conn.execute(f"REVOKE SELECT ON orders FROM {app}")
        with db.connect(app, app_password) as app_conn, \
                pytest.raises(errors.InsufficientPrivilege, match="permission denied for table orders"):
            app_conn.execute("SELECT * FROM orders")
        # the master manages the roles it created (PostgreSQL 16+: ADMIN OPTION on them)
        conn.execute(f"ALTER ROLE {app} PASSWORD 'Other-pass-456'")
        conn.execute(f"DROP ROLE {app}")


def test_master_cannot_become_superuser_and_rdsadmin_is_protected(db: Db) -> None:
    with db.connect() as conn:
        for statement in (
            "CREATE ROLE would_be_super SUPERUSER",
            f"ALTER ROLE {MASTER} SUPERUSER",
            f"ALTER ROLE {MASTER} REPLICATION",
            "DROP ROLE rdsadmin",
            "ALTER ROLE rdsadmin RENAME TO notadmin",
            "ALTER ROLE rdsadmin PASSWORD 'Hijack-pass-1'",
            "ALTER ROLE rdsadmin NOSUPERUSER",
            "GRANT rdsadmin TO " + MASTER,
        ):
            with pytest.raises(errors.InsufficientPrivilege) as info:
                conn.execute(statement)
            assert info.value.sqlstate == "42501", statement
            assert info.value.diag.message_primary.startswith(("permission denied", "must be superuser")), (
                statement, info.value.diag.message_primary)
        assert _attributes(conn, MASTER) == MASTER_ATTRIBUTES
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'rdsadmin'").fetchone() == (True,)
        # server-side programs stay out of reach (superuser or pg_execute_server_program only)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("GRANT pg_execute_server_program TO " + MASTER)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


def test_psql_flows(server: Any, db: Db) -> None:
    out = psql(db, "SELECT rolcreaterole, rolsuper FROM pg_roles WHERE rolname = current_user")
    assert out.stdout.strip() == "t|f"
    denied = psql(db, "DROP ROLE rdsadmin", check=False)
    assert denied.returncode != 0 and "ERROR:" in denied.stderr
    assert "permission denied" in denied.stderr or "must be superuser" in denied.stderr
    wrong = psql(db, "SELECT 1", password="Wrong-pass-1", check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    plain = psql(db, "SELECT 1", check=False, conninfo=(
        f"host={db.host} port={db.port} user={db.master} dbname={db.database} sslmode=disable"))
    assert plain.returncode != 0 and "no encryption" in plain.stderr

    bundle = server.data_dir / "tls" / "rds-ca-bundle.pem"
    assert bundle.is_file()
    verified = psql(db, "SELECT current_user", conninfo=(
        f"host={db.host} port={db.port} user={db.master} dbname={db.database} "
        f"sslmode=verify-full sslrootcert={bundle}"))
    assert verified.stdout.strip() == db.master
    # the certificate names the endpoint and nothing unrelated
    other = subprocess.run(
        ["psql", f"host=localhost.invalid hostaddr={socket.gethostbyname(db.host)} port={db.port} user={db.master} "
         f"dbname={db.database} sslmode=verify-full sslrootcert={bundle}", "-X", "-c", "SELECT 1"],
        env={"PGPASSWORD": db.password, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and "does not match host name" in other.stderr


def _damage_master(conn: psycopg.Connection[Any]) -> bool:
    """What the master can do to itself: revoke ``rds_superuser``, drop its attributes, change its own
    password. Returns whether the attributes really changed: PostgreSQL 16+ lets a CREATEROLE role
    alter only roles it holds ADMIN OPTION on (never itself), and a REVOKE by the master removes only
    grants the master made (``rds_superuser`` came from rdsadmin): there it is a warning and a no-op."""
    conn.execute(f"REVOKE rds_superuser FROM {MASTER}")
    try:
        conn.execute(f"ALTER ROLE {MASTER} NOCREATEROLE NOCREATEDB")
    except errors.InsufficientPrivilege:
        assert conn.info.server_version >= 160000
        damaged = False
    else:
        assert _attributes(conn, MASTER)[2:4] == (False, False)
        assert "rds_superuser" not in _member_of(conn, MASTER)
        damaged = True
    conn.execute(f"ALTER ROLE {MASTER} PASSWORD 'Self-chosen-1'")
    return damaged


def _reset_and_check(rds: Any, db: Db) -> None:
    with db.connect() as conn:
        damaged = _damage_master(conn)
    db.password = "Self-chosen-1"
    survivor = db.connect()
    survivor.execute("CREATE TEMP TABLE still_here (x int)")
    survivor.execute("INSERT INTO still_here VALUES (42)")
    new_password = "Reset-pass-" + ident("x")[-8:]
    out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, MasterUserPassword=new_password,
                                ApplyImmediately=True)["DBCluster"]
    assert "MasterUserPassword" not in out
    seen = [out["Status"]]
    wait_status(rds, db.cluster_id, "available", timeout=30, seen=seen)
    assert seen[0] == "resetting-master-credentials" and seen[-1] == "available", seen

    old_password, db.password = db.password, new_password
    with until(lambda: db.connect(), what="login with the new password") as conn:
        assert _attributes(conn, MASTER) == MASTER_ATTRIBUTES
        assert "rds_superuser" in _member_of(conn, MASTER)
        conn.execute("CREATE ROLE after_reset")
        conn.execute("DROP ROLE after_reset")
        if damaged:  # the membership really came back: the master administers rds_superuser again
            conn.execute("CREATE ROLE helper")
            conn.execute("GRANT rds_superuser TO helper")
            conn.execute("DROP ROLE helper")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(password=old_password).close()
    # the session opened before the reset was not dropped
    assert survivor.execute("SELECT x FROM still_here").fetchone() == (42,)
    survivor.close()

    # the same password again is accepted too
    rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, MasterUserPassword=new_password,
                          ApplyImmediately=True)
    wait_status(rds, db.cluster_id, "available", timeout=30)
    with db.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_reset_master_password_restores_privileges(rds: Any, db: Db) -> None:
    _reset_and_check(rds, db)


def test_reset_master_after_it_revoked_its_own_privileges_pg15() -> None:
    """On PostgreSQL 15 (fetched on first use, served with the auroral_rds module) the master *can* drop
    its CREATEROLE/CREATEDB and ``rds_superuser``: the reset must restore them."""
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="111122223333")
    try:
        rds = srv.client("rds")
        db = create_db(rds, prefix="e2e-pg15", engine_version="15.4")
        with db.connect() as conn:
            assert conn.info.server_version // 10000 == 15
        _reset_and_check(rds, db)
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)


def test_concurrent_logins(db: Db) -> None:
    """Many clients at once through the endpoint (TLS handshakes and SCRAM in parallel)."""
    failures: list[BaseException] = []

    def one() -> None:
        try:
            with db.connect() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
