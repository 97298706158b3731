"""``rds.restrict_password_commands`` end to end: a cluster parameter group turns it on (static:
pending-reboot until the writer reboots), then a ``CREATEROLE`` role without ``rds_password`` cannot
change passwords through the endpoint, until it is granted ``rds_password``. Needs the ``auroral_rds``
module (gcc and the server headers of each PostgreSQL installation); runs on every major served."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg import errors

from .e2e_helpers import FAST, create_db, delete_db, ident, served_engine_versions, until, wait_status

PARAM = "rds.restrict_password_commands"
MESSAGE = "must be a member of rds_password to alter passwords"


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def _show(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(f"SHOW {PARAM}").fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(("engine_version", "major"), served_engine_versions())
def test_restrict_password_commands(rds: Any, engine_version: str, major: int) -> None:
    group = ident("e2e-pw")
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=group, DBParameterGroupFamily=f"aurora-postgresql{engine_version.split('.')[0]}",
        Description="e2e")
    db = create_db(rds, prefix="e2e-pw", DBClusterParameterGroupName=group, engine_version=engine_version)
    try:
        with db.connect() as master:
            assert master.info.server_version // 10000 == major
            assert _show(master) == "off"
            master.execute("CREATE ROLE pw_admin LOGIN CREATEROLE PASSWORD 'Pw-admin-pass-1'")
            master.execute("CREATE ROLE pw_user LOGIN PASSWORD 'Pw-user-pass-1'")
            master.execute("GRANT pw_user TO pw_admin WITH ADMIN OPTION")  # PostgreSQL 16+: may alter it

        try:
            rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
                {"ParameterName": PARAM, "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
        except rds.exceptions.ClientError as exc:  # the module could not be built on this host
            assert exc.response["Error"]["Code"] == "InvalidParameterValue"
            pytest.skip(exc.response["Error"]["Message"])

        def member_status() -> str:
            c = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
            return str(c["DBClusterMembers"][0]["DBClusterParameterGroupStatus"])

        until(lambda: member_status() == "pending-reboot", what="pending-reboot")
        with db.connect() as master:
            assert _show(master) == "off"
        rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)
        time.sleep(0.2)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        wait_status(rds, db.cluster_id, "available")
        assert member_status() == "in-sync"

        with until(lambda: db.connect(), what="connect after reboot") as master:
            assert _show(master) == "on"
            master.execute("ALTER ROLE pw_user PASSWORD 'Pw-user-pass-2'")  # rds_superuser ⊃ rds_password

        with db.connect("pw_admin", "Pw-admin-pass-1") as admin:
            for statement in ("ALTER ROLE pw_user PASSWORD 'Pw-user-pass-3'",
                              "ALTER USER pw_admin PASSWORD 'Pw-admin-pass-2'",
                              "CREATE ROLE pw_other LOGIN PASSWORD 'Pw-other-pass-1'",
                              "ALTER ROLE pw_user VALID UNTIL '2030-01-01'"):
                with pytest.raises(errors.InsufficientPrivilege) as info:
                    admin.execute(statement.encode())
                assert info.value.diag.message_primary == MESSAGE
                assert info.value.sqlstate == "42501"
            admin.execute("CREATE ROLE pw_nologin NOLOGIN")  # no password involved: allowed

        with db.connect() as master:
            master.execute("GRANT rds_password TO pw_admin")
        with db.connect("pw_admin", "Pw-admin-pass-1") as admin:
            admin.execute("ALTER ROLE pw_user PASSWORD 'Pw-user-pass-4'")
            admin.execute("ALTER USER pw_admin PASSWORD 'Pw-admin-pass-2'")
        with db.connect("pw_user", "Pw-user-pass-4") as user:
            assert user.execute("SELECT current_user").fetchone() == ("pw_user",)
    finally:
        delete_db(rds, db)
    until(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group) or True,
          timeout=30, what="delete the parameter group")
