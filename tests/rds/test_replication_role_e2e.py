"""The replication role ``rdsrepladmin`` is the engine's alone, through the endpoint.

PostgreSQL 16+ refuses the master user (``CREATEROLE``) any grant, alteration or rename of a role it has
no ADMIN option on. PostgreSQL 14 and 15 (served only with the ``auroral_rds`` module) let a
``CREATEROLE`` role grant itself any non-superuser role: without ``auroral_rds``'s guard the master
could ``GRANT rdsrepladmin TO master``, ``SET ROLE rdsrepladmin`` and read the data directory with the
file functions granted for pg_rewind, or rename the role away and make one of that name of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from .e2e_helpers import create_db, served_engine_versions

ATTACKS = (
    "GRANT rdsrepladmin TO master",
    "CREATE ROLE sneaky IN ROLE rdsrepladmin",
    "CREATE ROLE sneaky2 ADMIN master IN GROUP rdsrepladmin",
    "ALTER GROUP rdsrepladmin ADD USER master",
    "ALTER ROLE rdsrepladmin RENAME TO hijacked",
    "ALTER ROLE rdsrepladmin NOREPLICATION",
    "ALTER ROLE rdsrepladmin SET search_path = public",
    "GRANT rds_superuser TO rdsrepladmin",
    "DROP ROLE rdsrepladmin",
)


def _attack(rds: Any, engine_version: str, major_check: Callable[[int], bool]) -> None:
    db = create_db(rds, prefix="repl", engine_version=engine_version)
    with db.connect() as master:
        assert major_check(master.info.server_version // 10000)
        if not master.execute("SELECT 1 FROM pg_settings WHERE name = 'rds.extensions'").fetchone():
            pytest.skip("auroral_rds could not be built on this host")
        for statement in ATTACKS:
            with pytest.raises(errors.InsufficientPrivilege) as info:
                master.execute(statement.encode())
            assert info.value.diag.message_primary == 'permission denied: role "rdsrepladmin" is reserved', statement
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            master.execute("SET ROLE rdsrepladmin")
        assert master.execute("SELECT rolname, rolreplication FROM pg_roles WHERE rolname = 'rdsrepladmin'"
                              ).fetchall() == [("rdsrepladmin", True)]
        assert master.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                              "WHERE r.rolname = 'rdsrepladmin'").fetchone() == (0,)
        # other roles are still the master's to manage
        master.execute("CREATE ROLE app_role LOGIN PASSWORD 'App-pass-1234'")
        master.execute("GRANT rds_iam TO app_role")
        master.execute("ALTER ROLE app_role RENAME TO app_role2")
        master.execute("DROP ROLE app_role2")


@pytest.mark.parametrize(("engine_version", "major"), served_engine_versions())
def test_master_cannot_take_the_replication_role(server: Any, engine_version: str, major: int) -> None:
    """On every major served: PostgreSQL 16+ refuses all of it by itself (the guard answers first),
    14/15 only through the guard; the master's own role management is left alone."""
    _attack(server.client("rds"), engine_version, lambda running: running == major)
