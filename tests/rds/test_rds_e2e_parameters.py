"""Cluster parameter groups end to end: values set through the RDS API take real effect in the
PostgreSQL server (``SHOW``), ``rds.force_ssl`` decides whether plaintext clients get in, and static
parameters wait for a reboot."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from .e2e_helpers import FAST, create_db, delete_db, ident, until, wait_status

NO_ENCRYPTION = 'no pg_hba.conf entry for host "127.0.0.1", user "master", database "appdb", no encryption'


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def _params(rds: Any, group: str, source: str | None = None) -> dict[str, dict[str, Any]]:
    kw = {"Source": source} if source else {}
    pages = rds.get_paginator("describe_db_cluster_parameters").paginate(DBClusterParameterGroupName=group, **kw)
    return {p["ParameterName"]: p for page in pages for p in page["Parameters"]}


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def test_force_ssl_off_and_dynamic_parameters(rds: Any) -> None:
    group = ident("e2e-pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
    defaults = _params(rds, group)
    assert defaults["rds.force_ssl"]["ParameterValue"] == "1"
    assert defaults["rds.force_ssl"]["ApplyType"] == "dynamic"
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"},
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
    ])
    user = _params(rds, group, source="user")
    assert set(user) == {"rds.force_ssl", "log_connections"}
    assert user["rds.force_ssl"]["ParameterValue"] == "0" and user["rds.force_ssl"]["Source"] == "user"
    assert user["log_connections"]["ParameterValue"] == "1"

    db = create_db(rds, prefix="e2e-param", DBClusterParameterGroupName=group)
    try:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        assert cluster["DBClusterParameterGroup"] == group
        with db.connect(sslmode="disable") as conn:  # plaintext admitted: rds.force_ssl=0
            assert not conn.info.pgconn.ssl_in_use
            assert _show(conn, "log_connections") in ("on", "1", "receipt,authentication,authorization")
            assert _show(conn, "password_encryption") == "scram-sha-256"
            verifier = conn.execute("SELECT 1").fetchone()
            assert verifier == (1,)

        # dynamic: turning enforcement back on applies to new connections without a reboot
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"},
            {"ParameterName": "log_min_duration_statement", "ParameterValue": "250", "ApplyMethod": "immediate"},
        ])

        def refused() -> bool:
            try:
                db.connect(sslmode="disable").close()
            except psycopg.OperationalError as exc:
                assert NO_ENCRYPTION in str(exc), str(exc)
                return True
            return False

        until(refused, what="plaintext refused after rds.force_ssl=1")
        with db.connect() as conn:
            until(lambda: _show(conn, "log_min_duration_statement") == "250ms", what="log_min_duration_statement")

        # reset: back to the engine default
        rds.reset_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "log_connections", "ApplyMethod": "immediate"}])
        assert "log_connections" not in _params(rds, group, source="user")

        def log_connections_off() -> bool:
            with db.connect() as conn:
                return _show(conn, "log_connections") in ("off", "0", "")

        until(log_connections_off, what="log_connections reset")

        # static: pending-reboot until the writer reboots
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "max_connections", "ParameterValue": "42", "ApplyMethod": "pending-reboot"}])

        def member_status() -> str:
            c = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
            return str(c["DBClusterMembers"][0]["DBClusterParameterGroupStatus"])

        until(lambda: member_status() == "pending-reboot", what="pending-reboot")
        with db.connect() as conn:
            assert _show(conn, "max_connections") != "42"
        out = rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)["DBInstance"]
        assert out["DBInstanceStatus"] == "rebooting"
        time.sleep(0.2)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        wait_status(rds, db.cluster_id, "available")
        with until(lambda: db.connect(), what="connect after reboot") as conn:
            assert _show(conn, "max_connections") == "42"
        assert member_status() == "in-sync"
    finally:
        delete_db(rds, db)
    # the group is in use until the cluster is gone; then it can be deleted
    until(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group) or True,
          timeout=30, what="delete the parameter group")


def test_default_group_refuses_plaintext(rds: Any) -> None:
    db = create_db(rds, prefix="e2e-ssl")
    try:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        assert cluster["DBClusterParameterGroup"] == "default.aurora-postgresql16"
        with pytest.raises(psycopg.OperationalError) as info:
            db.connect(sslmode="disable").close()
        assert NO_ENCRYPTION in str(info.value)
        with db.connect(sslmode="require") as conn:
            assert conn.info.pgconn.ssl_in_use
        defaults = _params(rds, "default.aurora-postgresql16")
        assert defaults["rds.force_ssl"]["ParameterValue"] == "1"
        assert defaults["password_encryption"]["ParameterValue"] == "scram-sha-256"
    finally:
        delete_db(rds, db)
