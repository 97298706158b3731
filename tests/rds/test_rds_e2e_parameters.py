"""Cluster parameter groups end to end: values set through the RDS API take real effect in the
PostgreSQL server (``SHOW``), ``rds.force_ssl`` decides whether plaintext clients get in, and static
parameters wait for a reboot. Values outside what DescribeDBClusterParameters allows are refused
(``timezone``: the zones of the server's own tz database), and a cluster PostgreSQL will not run
with its parameters is ``incompatible-parameters``, never wedged: fixing the group and rebooting (or
restarting auroral) brings it back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.conftest import new_root_key, start_server, stop_server

from .e2e_helpers import (
    FAST,
    Db,
    create_db,
    delete_db,
    ident,
    postgres_processes,
    psql,
    until,
    wait_status,
)

INCOMPATIBLE = "incompatible-parameters"

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


def _refusal(rds: Any, group: str, name: str, value: str, method: str = "immediate") -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": name, "ParameterValue": value, "ApplyMethod": method}])
    error = info.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_values_outside_allowed_values_are_refused(rds: Any) -> None:
    group = ident("e2e-check")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
    try:
        described = _params(rds, group)
        timezone = described["timezone"]
        assert (timezone["DataType"], timezone["IsModifiable"]) == ("string", True)
        zones = timezone["AllowedValues"].split(",")
        assert {"UTC", "Europe/Paris", "America/Sao_Paulo"} <= set(zones) and len(zones) > 300

        # the finding: any string went into postgresql.conf and wedged the cluster at its next start
        code, message = _refusal(rds, group, "timezone", "Mars/Olympus")
        assert code == "InvalidParameterValue"
        assert message.startswith("Invalid parameter value: Mars/Olympus for: timezone allowed values are: ")
        assert "Europe/Paris" in message
        assert _refusal(rds, group, "timezone", "UTC'\nlisten_addresses = '*")[0] == "InvalidParameterValue"
        # integers: AWS's range, plain decimal digits only
        assert _refusal(rds, group, "statement_timeout", "2147483648") == (
            "InvalidParameterValue",
            "Invalid parameter value: 2147483648 for: statement_timeout allowed values are: 0-2147483647")
        for bad in ("-1", "1_000", " 5", "5ms", "\u0661\u0662", "0x10"):
            assert _refusal(rds, group, "statement_timeout", bad)[0] == "InvalidParameterValue", bad
        # enums and booleans
        assert _refusal(rds, group, "log_statement", "everything") == (
            "InvalidParameterValue",
            "Invalid parameter value: everything for: log_statement allowed values are: none,ddl,mod,all")
        assert _refusal(rds, group, "rds.force_ssl", "2")[0] == "InvalidParameterValue"
        assert _refusal(rds, group, "password_encryption", "plain")[0] == "InvalidParameterValue"
        # not modifiable, and a static parameter cannot apply immediately
        assert _refusal(rds, group, "ssl", "0")[0] == "InvalidParameterValue"
        assert _refusal(rds, group, "max_connections", "50") == (
            "InvalidParameterCombination", "cannot use immediate apply method for static parameter")
        assert _params(rds, group, source="user") == {}
    finally:
        rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)


def test_valid_timezone_is_applied(rds: Any) -> None:
    group = ident("e2e-tz")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
        {"ParameterName": "timezone", "ParameterValue": "America/Sao_Paulo", "ApplyMethod": "immediate"}])
    db = create_db(rds, prefix="e2e-tz", DBClusterParameterGroupName=group)
    try:
        assert psql(db, "SHOW timezone").stdout.strip() == "America/Sao_Paulo"
        # AllowedValues are exactly the zones this PostgreSQL knows by name
        with db.connect() as conn:
            known = {str(row[0]) for row in conn.execute("SELECT name FROM pg_timezone_names")}
        assert set(_params(rds, group)["timezone"]["AllowedValues"].split(",")) == known
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "timezone", "ParameterValue": "Asia/Kolkata", "ApplyMethod": "immediate"}])
        until(lambda: psql(db, "SHOW timezone").stdout.strip() == "Asia/Kolkata", what="timezone applied")
    finally:
        delete_db(rds, db)
    until(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group) or True,
          timeout=30, what="delete the parameter group")




def _statuses(rds: Any, db: Db) -> tuple[str, str]:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
    return str(cluster["Status"]), str(instance["DBInstanceStatus"])


def _wait_statuses(rds: Any, db: Db, want: str, timeout: float = 90) -> None:
    until(lambda: _statuses(rds, db) == (want, want), timeout=timeout, what=f"{db.cluster_id} {want}")


def _reconnectable(rds: Any, db: Db) -> Db:
    """``db`` with the endpoint Describe reports now (it is closed while incompatible)."""
    cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
    return Db(db.cluster_id, db.instance_id, cluster["Endpoint"], cluster["Port"], db.resource_id, db.password)


def test_incompatible_parameters_and_recovery(base: Path) -> None:
    key, secret = new_root_key()
    data = base / "data"
    srv = start_server(data, access_key=key, secret_key=secret, account="333344445555")
    try:
        rds = srv.client("rds")
        bad = ident("e2e-bad")
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=bad,
                                              DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
        # within AWS's AllowedValues (6-262143), but PostgreSQL will not run with it: with its worker
        # processes and WAL senders it exceeds the most server processes PostgreSQL supports
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=bad, Parameters=[
            {"ParameterName": "max_connections", "ParameterValue": "262143", "ApplyMethod": "pending-reboot"}])

        # 1. created with the group: the cluster exists, PostgreSQL does not start with it
        db = create_db(rds, prefix="e2e-incompat", DBClusterParameterGroupName=bad, wait=False)
        _wait_statuses(rds, db, INCOMPATIBLE)
        assert postgres_processes(db.resource_id) == []
        for call, kwargs in (
            (rds.start_db_cluster, {"DBClusterIdentifier": db.cluster_id}),
            (rds.stop_db_cluster, {"DBClusterIdentifier": db.cluster_id}),
            (rds.modify_db_cluster, {"DBClusterIdentifier": db.cluster_id, "MasterUserPassword": "Other-pass-12",
                                     "ApplyImmediately": True}),
        ):
            with pytest.raises(ClientError) as info:
                call(**kwargs)
            assert info.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"

        # 2. recovery: another group for the cluster, then a reboot
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id,
                              DBClusterParameterGroupName="default.aurora-postgresql16", ApplyImmediately=True)
        rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)
        _wait_statuses(rds, db, "available")
        db = _reconnectable(rds, db)
        with until(lambda: db.connect(), what="login after recovery") as conn:
            assert _show(conn, "max_connections") == "100"
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('data')")

        # 3. back to the bad group: a reboot takes it up and PostgreSQL refuses it again
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, DBClusterParameterGroupName=bad,
                              ApplyImmediately=True)
        rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)
        _wait_statuses(rds, db, INCOMPATIBLE)
        with pytest.raises(psycopg.OperationalError):
            db.connect().close()

        # 4. restarting auroral tries again: still incompatible (the group is unchanged), not failed
        port = int(srv.url.rsplit(":", 1)[1])
        stop_server(srv)
        srv = start_server(data, access_key=key, secret_key=secret, account="333344445555", port=port)
        rds = srv.client("rds")
        time.sleep(3)  # the recovery's start attempt
        assert _statuses(rds, db) == (INCOMPATIBLE, INCOMPATIBLE)

        # 5. recovery: reset the parameter, reboot the instance
        rds.reset_db_cluster_parameter_group(DBClusterParameterGroupName=bad, Parameters=[
            {"ParameterName": "max_connections", "ApplyMethod": "pending-reboot"}])
        rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)
        _wait_statuses(rds, db, "available")
        db = _reconnectable(rds, db)
        with until(lambda: db.connect(), what="login after reset and reboot") as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("data",)]
            assert _show(conn, "max_connections") == "100"
        delete_db(rds, db)
    finally:
        stop_server(srv)
