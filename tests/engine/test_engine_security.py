"""Aurora's database-level security model on real PostgreSQL: the master user, rds_* roles, rdsadmin."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg
import pytest

from auroral.engine import PgServer
from auroral.engine.bootstrap import scram_verifier

from .conftest import ADMIN_PASSWORD, MASTER, MASTER_PASSWORD, connect, pg_error

# What stock PostgreSQL answers a NOSUPERUSER CREATEROLE master acting on the superuser rdsadmin
# (SQLSTATE 42501). PostgreSQL 16 reworded them and added a DETAIL line.
RDSADMIN_ERRORS: dict[int, dict[str, tuple[str, str | None]]] = {
    15: {
        "DROP ROLE rdsadmin": ("must be superuser to drop superusers", None),
        "ALTER ROLE rdsadmin RENAME TO admin2": ("must be superuser to rename superusers", None),
        "ALTER ROLE rdsadmin PASSWORD 'x'": (
            "must be superuser to alter superuser roles or change superuser attribute", None),
        "ALTER ROLE rdsadmin NOSUPERUSER": (
            "must be superuser to alter superuser roles or change superuser attribute", None),
    },
    18: {
        "DROP ROLE rdsadmin": (
            "permission denied to drop role",
            "Only roles with the SUPERUSER attribute may drop roles with the SUPERUSER attribute."),
        "ALTER ROLE rdsadmin RENAME TO admin2": (
            "permission denied to rename role",
            "Only roles with the SUPERUSER attribute may rename roles with the SUPERUSER attribute."),
        "ALTER ROLE rdsadmin PASSWORD 'x'": (
            "permission denied to alter role",
            "Only roles with the SUPERUSER attribute may alter roles with the SUPERUSER attribute."),
        "ALTER ROLE rdsadmin NOSUPERUSER": (
            "permission denied to alter role",
            "Only roles with the SUPERUSER attribute may alter roles with the SUPERUSER attribute."),
    },
}
SUPERUSER_ERRORS: dict[int, dict[str, tuple[str, str | None]]] = {
    15: {
        "CREATE ROLE evil SUPERUSER": ("must be superuser to create superusers", None),
        f"ALTER ROLE {MASTER} SUPERUSER": (
            "must be superuser to alter superuser roles or change superuser attribute", None),
        f"ALTER ROLE {MASTER} REPLICATION": (
            "must be superuser to alter replication roles or change replication attribute", None),
    },
    18: {
        "CREATE ROLE evil SUPERUSER": (
            "permission denied to create role",
            "Only roles with the SUPERUSER attribute may create roles with the SUPERUSER attribute."),
        f"ALTER ROLE {MASTER} SUPERUSER": (
            "permission denied to alter role",
            "Only roles with the SUPERUSER attribute may change the SUPERUSER attribute."),
        f"ALTER ROLE {MASTER} REPLICATION": (
            "permission denied to alter role",
            f'Only roles with the CREATEROLE attribute and the ADMIN option on role "{MASTER}" may alter this role.'),
    },
}


def test_master_attributes(master: psycopg.Connection[tuple[object, ...]]) -> None:
    row = master.execute(
        "SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,"
        " rolvaliduntil::text, rolconnlimit FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, True, True, True, True, False, False, "infinity", -1)
    memberships = master.execute(
        "SELECT r.rolname, m.admin_option FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = current_user::regrole"
    ).fetchall()
    assert memberships == [("rds_superuser", True)]
    inherited = master.execute(
        "SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'USAGE') ORDER BY 1"
    ).fetchall()
    names = {name for (name,) in inherited}
    assert {"rds_superuser", "pg_monitor", "pg_signal_backend", "pg_read_all_stats", "rds_replication",
            "rds_password"} <= names
    assert "rds_iam" not in names  # IAM authentication must not be forced on the master user
    assert "rdsadmin" not in names


def test_rds_superuser_memberships(server: PgServer, runner: asyncio.Runner) -> None:
    rows = runner.run(server.run_admin_sql(
        "SELECT r.rolname, m.admin_option FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = 'rds_superuser'::regrole ORDER BY 1"
    ))
    expected = [("pg_monitor", False), ("pg_signal_backend", False), ("rds_password", True),
                ("rds_replication", True)]
    if server.major >= 16:
        expected.insert(2, ("rds_iam", True))
    assert rows == expected
    attrs = runner.run(server.run_admin_sql(
        "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'rds%' ORDER BY 1"))
    assert attrs == [("rds_iam", False, False), ("rds_password", False, False),
                     ("rds_replication", False, False), ("rds_superuser", False, False),
                     ("rdsadmin", True, True), ("rdsrepladmin", True, False)]
    # the replication role: no password, replication only, by peer (conf.hba_conf)
    assert runner.run(server.run_admin_sql(
        "SELECT rolreplication, rolpassword IS NULL, rolinherit FROM pg_authid WHERE rolname = 'rdsrepladmin'"
    )) == [(True, True, False)]


def test_password_is_scram_and_never_plaintext(server: PgServer, runner: asyncio.Runner) -> None:
    (verifier,) = runner.run(server.run_admin_sql(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (MASTER,)))[0]
    assert isinstance(verifier, str) and verifier.startswith("SCRAM-SHA-256$4096:")
    log = server.log_path.read_text(errors="replace")
    assert MASTER_PASSWORD not in log and ADMIN_PASSWORD not in log
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(server, password="wrong-password")
    with pytest.raises(psycopg.OperationalError):
        connect(server, user="rdsadmin", password="wrong-password", dbname="postgres")


def test_scram_verifier_format() -> None:
    verifier = scram_verifier("pencil", salt=b"\x00" * 16)
    assert verifier.startswith("SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$")
    stored, server_key = verifier.split("$")[2].split(":")
    assert len(stored) == len(server_key) == 44


def test_app_role_least_privilege(server: PgServer, master: psycopg.Connection[tuple[object, ...]]) -> None:
    master.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    master.execute("INSERT INTO orders VALUES (1, 9.5)")
    master.execute("CREATE ROLE app_reader LOGIN PASSWORD 'Reader-Passw0rd'")
    master.execute("GRANT USAGE ON SCHEMA public TO app_reader")
    master.execute("GRANT SELECT ON orders TO app_reader")
    with connect(server, "app_reader", "Reader-Passw0rd") as app:
        assert app.execute("SELECT total FROM orders").fetchall() == [(Decimal("9.5"),)]
        err = pg_error(app, "INSERT INTO orders VALUES (2, 1)")
        assert err.sqlstate == "42501" and "permission denied for table orders" in str(err)
        master.execute("REVOKE SELECT ON orders FROM app_reader")
        err = pg_error(app, "SELECT * FROM orders")
        assert err.sqlstate == "42501"
    # the master manages roles it created (PostgreSQL 16+: through the automatic ADMIN OPTION)
    master.execute("ALTER ROLE app_reader CONNECTION LIMIT 5")
    master.execute("GRANT rds_superuser, rds_password, rds_replication, rds_iam TO app_reader")
    master.execute("REVOKE rds_superuser, rds_password, rds_replication, rds_iam FROM app_reader")
    master.execute("REVOKE ALL ON SCHEMA public FROM app_reader")
    master.execute("DROP ROLE app_reader")
    master.execute("DROP TABLE orders")


def test_master_creates_databases_and_extensions(server: PgServer,
                                                 master: psycopg.Connection[tuple[object, ...]]) -> None:
    master.execute("CREATE DATABASE scratch")
    master.execute("DROP DATABASE scratch")
    master.execute("CREATE EXTENSION citext")  # trusted: CREATE on the database suffices
    master.execute("DROP EXTENSION citext")
    if not server.installation.preload:
        err = pg_error(master, "CREATE EXTENSION pg_stat_statements")  # untrusted: superuser only (stock)
        assert err.sqlstate == "42501"
        return
    # untrusted, but one of Aurora's: auroral_rds creates it for rds_superuser members
    master.execute("CREATE EXTENSION pg_stat_statements")
    master.execute("DROP EXTENSION pg_stat_statements")
    for name in ("file_fdw", "plpython3u", "adminpack"):  # not Aurora's (where shipped at all)
        err = pg_error(master, f"CREATE EXTENSION {name}")
        assert err.sqlstate == "42501", name
        assert err.diag.message_primary == f'permission denied to create extension "{name}"'
        assert err.diag.message_hint == "This extension is not supported (see rds.extensions)."


def test_master_sees_and_signals_sessions(server: PgServer, master: psycopg.Connection[tuple[object, ...]],
                                          runner: asyncio.Runner) -> None:
    master.execute("CREATE ROLE victim LOGIN PASSWORD 'Victim-Passw0rd'")
    try:
        with connect(server, "victim", "Victim-Passw0rd") as victim:
            victim.execute("SELECT 'victim-query-marker'")
            rows = master.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE usename = 'victim'").fetchall()
            assert len(rows) == 1 and "victim-query-marker" in str(rows[0][1])
            assert master.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],)).fetchone() == (True,)
            with pytest.raises(psycopg.OperationalError):
                victim.execute("SELECT 1")
    finally:
        master.execute("DROP ROLE victim")


def test_master_cannot_become_superuser(server: PgServer, master: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement, (message, detail) in _expected(SUPERUSER_ERRORS, server.major).items():
        err = pg_error(master, statement)
        assert err.sqlstate == "42501", statement
        if message:
            assert (err.diag.message_primary, err.diag.message_detail) == (message, detail), statement
    assert master.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)


def test_rdsadmin_is_protected(server: PgServer, master: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement, (message, detail) in _expected(RDSADMIN_ERRORS, server.major).items():
        err = pg_error(master, statement)
        assert err.sqlstate == "42501", statement
        if message:
            assert (err.diag.message_primary, err.diag.message_detail) == (message, detail), statement
    # cancelling or terminating rdsadmin's sessions is refused too (pg_signal_backend excludes superusers)
    with connect(server, "rdsadmin", ADMIN_PASSWORD, "postgres") as admin:
        pid = admin.info.backend_pid
        err = pg_error(master, f"SELECT pg_terminate_backend({pid})")
        assert err.sqlstate == "42501"
        assert admin.execute("SELECT 1").fetchone() == (1,)


def test_granting_to_rdsadmin_is_not_blocked(master: psycopg.Connection[tuple[object, ...]]) -> None:
    """Stock PostgreSQL lets a role's admin grant it to a superuser; harmless (rdsadmin already has
    every privilege) and not blockable without a C hook. Recorded so a change is noticed."""
    master.execute("GRANT rds_superuser TO rdsadmin")
    master.execute("REVOKE rds_superuser FROM rdsadmin")


def test_master_cannot_obtain_server_program_roles(server: PgServer,
                                                   master: psycopg.Connection[tuple[object, ...]]) -> None:
    """pg_execute_server_program / pg_read_server_files / pg_write_server_files give shell and file
    access as the PostgreSQL OS user. PostgreSQL <= 15 lets any CREATEROLE role grant them; auroral_rds
    refuses every way of doing it on every major (without the module, 14/15 are not served)."""
    if server.major < 16:
        assert server.installation.preload, "PostgreSQL < 16 served without auroral_rds"
    master.execute("CREATE ROLE helper NOLOGIN")
    try:
        for role in ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files"):
            for statement in (f"GRANT {role} TO {MASTER}", f"GRANT {role} TO helper WITH ADMIN OPTION",
                              f"CREATE ROLE sneaky IN ROLE {role}", f"CREATE ROLE sneaky IN GROUP {role}",
                              f"ALTER GROUP {role} ADD USER {MASTER}", f"ALTER ROLE {role} LOGIN PASSWORD 'x'",
                              f"ALTER ROLE {role} SET work_mem = '1MB'", f"ALTER ROLE {role} RENAME TO gone"):
                err = pg_error(master, statement)
                assert err.sqlstate in ("42501", "42939"), statement  # 42939: PostgreSQL's "reserved"
                if server.installation.preload and err.sqlstate == "42501" and not statement.startswith("ALTER"):
                    assert err.diag.message_primary == f'permission denied to grant role "{role}"', statement
        names = master.execute(
            "SELECT r.rolname FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER') "
            "OR pg_has_role('helper', r.oid, 'MEMBER')").fetchall()
        assert not {n for (n,) in names} & {"pg_execute_server_program", "pg_read_server_files",
                                            "pg_write_server_files"}
        for statement in ("COPY (SELECT 1) TO PROGRAM 'id'", "COPY (SELECT 1) TO '/tmp/auroral-x'",
                          "SELECT pg_read_file('postgresql.conf')", "SELECT lo_import('/etc/passwd')",
                          "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'libc', 'getpid'"):
            err = pg_error(master, statement)
            assert err.sqlstate == "42501", statement
    finally:
        master.execute("DROP ROLE IF EXISTS sneaky")
        master.execute("DROP ROLE helper")


def _expected(table: dict[int, dict[str, tuple[str, str | None]]], major: int
              ) -> dict[str, tuple[str | None, str | None]]:
    """Exact messages for the majors we recorded; for others (13, 14 / 16, 17) only the SQLSTATE."""
    if major in table:
        return dict(table[major])
    reference = table[15] if major < 16 else table[18]
    return {statement: (None, None) for statement in reference}
