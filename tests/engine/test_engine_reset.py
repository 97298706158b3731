"""reset_master: Aurora's "set a new master password" restores the master user's privileges."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from auroral.engine import PgServer

from .conftest import MASTER, MASTER_PASSWORD, connect


def test_reset_master_restores_privileges_and_keeps_connections(server: PgServer, runner: asyncio.Runner) -> None:
    survivor = connect(server)
    try:
        # the master removes its own rds_superuser membership (it holds ADMIN OPTION, so it may)
        survivor.execute(f"REVOKE rds_superuser FROM {MASTER}")
        if server.major < 16:
            survivor.execute(f"ALTER ROLE {MASTER} NOCREATEROLE NOCREATEDB")  # allowed on <= 15
        else:  # 16+: a role cannot change its own attributes; damage it as an admin would
            runner.run(server.run_admin_sql(f"ALTER ROLE {MASTER} NOCREATEROLE NOCREATEDB NOINHERIT"))
        damaged = survivor.execute(
            "SELECT rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone()
        assert damaged == (False, False)

        runner.run(server.reset_master(MASTER, "New-Master-Passw0rd"))

        assert survivor.execute("SELECT 1").fetchone() == (1,)  # not disconnected
        row = survivor.execute(
            "SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,"
            " rolvaliduntil::text FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False, True, True, True, True, False, "infinity")
        membership = survivor.execute(
            "SELECT m.admin_option FROM pg_auth_members m WHERE m.member = current_user::regrole"
            " AND m.roleid = 'rds_superuser'::regrole").fetchall()
        assert membership == [(True,)]
        with pytest.raises(psycopg.OperationalError):
            connect(server, password=MASTER_PASSWORD)
        with connect(server, password="New-Master-Passw0rd") as fresh:
            fresh.execute("CREATE ROLE after_reset")
            fresh.execute("DROP ROLE after_reset")
        # the same password again is accepted (Aurora allows it)
        runner.run(server.reset_master(MASTER, MASTER_PASSWORD))
        connect(server).close()
    finally:
        survivor.close()


def test_reset_master_recreates_a_dropped_master(server: PgServer, runner: asyncio.Runner) -> None:
    runner.run(server.run_admin_sql("CREATE ROLE other_master LOGIN"))
    runner.run(server.run_admin_sql("DROP ROLE other_master"))
    runner.run(server.reset_master("other_master", "Other-Passw0rd"))
    with connect(server, "other_master", "Other-Passw0rd") as conn:
        assert conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    runner.run(server.run_admin_sql("DROP ROLE other_master"))
