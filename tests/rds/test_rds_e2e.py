"""RDS end to end with unmodified clients: boto3 (waiters, errors), the AWS CLI, CloudTrail, and
psycopg reaching the real PostgreSQL server at the Endpoint/Port that Describe reports."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import (
    ENGINE_VERSION,
    FAST,
    MASTER,
    PASSWORD,
    create_db,
    delete_db,
    ident,
    until,
    wait_cluster_gone,
    wait_status,
)


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_cluster_and_instance_then_connect(server: Any, rds: Any) -> None:
    cid, iid = ident("e2e-create"), ident("e2e-create-i")
    out = rds.create_db_cluster(
        DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
        MasterUsername=MASTER, MasterUserPassword=PASSWORD, DatabaseName="shop",
        Tags=[{"Key": "team", "Value": "payments"}],
    )["DBCluster"]
    assert out["Status"] == "creating"
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)

    cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    assert cluster["Status"] == "available"
    assert cluster["Engine"] == "aurora-postgresql" and cluster["EngineVersion"] == ENGINE_VERSION
    assert re.fullmatch(r"cluster-[A-Z0-9]{26}", cluster["DbClusterResourceId"])
    assert cluster["DBClusterArn"] == f"arn:aws:rds:us-east-1:{server.account}:cluster:{cid}"
    assert cluster["MasterUsername"] == MASTER and cluster["DatabaseName"] == "shop"
    assert isinstance(cluster["ClusterCreateTime"], dt.datetime)
    assert abs((dt.datetime.now(dt.UTC) - cluster["ClusterCreateTime"]).total_seconds()) < 300
    assert cluster["Endpoint"] and isinstance(cluster["Port"], int) and cluster["Port"] > 0
    assert cluster["DBClusterMembers"] == [
        {"DBInstanceIdentifier": iid, "IsClusterWriter": True, "DBClusterParameterGroupStatus": "in-sync",
         "PromotionTier": cluster["DBClusterMembers"][0]["PromotionTier"]}
    ]
    assert {"Key": "team", "Value": "payments"} in cluster["TagList"]
    instance = rds.describe_db_instances(DBInstanceIdentifier=iid)["DBInstances"][0]
    assert instance["DBInstanceStatus"] == "available" and instance["DBClusterIdentifier"] == cid
    assert re.fullmatch(r"db-[A-Z0-9]{26}", instance["DbiResourceId"])
    assert instance["Endpoint"]["Port"] > 0

    with psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user=MASTER, password=PASSWORD,
                         dbname="shop", sslmode="require", connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (MASTER, "shop")
        assert conn.info.pgconn.ssl_in_use
        assert int(conn.execute("SHOW server_version_num").fetchone()[0]) >= 160000
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user=MASTER, password="wrong-password",
                        dbname="shop", sslmode="require", connect_timeout=10).close()

    rds.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
    rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
    wait_cluster_gone(rds, cid)


def test_errors_have_aws_codes(server: Any, rds: Any) -> None:
    db = create_db(rds, prefix="e2e-err")
    try:
        with pytest.raises(ClientError) as info:
            rds.create_db_cluster(DBClusterIdentifier=db.cluster_id, Engine="aurora-postgresql",
                                  MasterUsername=MASTER, MasterUserPassword=PASSWORD)
        assert _error(info)[0] == "DBClusterAlreadyExistsFault" and _error(info)[2] == 400
        assert isinstance(info.value, rds.exceptions.DBClusterAlreadyExistsFault)

        missing = ident("e2e-missing")
        with pytest.raises(ClientError) as info:
            rds.describe_db_clusters(DBClusterIdentifier=missing)
        assert _error(info) == ("DBClusterNotFoundFault", f"DBCluster {missing} not found.", 404)

        for bad in ("1starts-with-digit", "ends-with-", "double--hyphen", "under_score"):
            with pytest.raises(ClientError) as info:
                rds.create_db_cluster(DBClusterIdentifier=bad, Engine="aurora-postgresql",
                                      MasterUsername=MASTER, MasterUserPassword=PASSWORD)
            code, message, status = _error(info)
            assert (code, status) == ("InvalidParameterValue", 400), bad
            assert "identifier" in message.lower(), message

        for bad_password in ('has"quote1', "has/slash1", "has@at123", "has space1", "short"):
            with pytest.raises(ClientError) as info:
                rds.create_db_cluster(DBClusterIdentifier=ident("e2e-pw"), Engine="aurora-postgresql",
                                      MasterUsername=MASTER, MasterUserPassword=bad_password)
            assert _error(info)[0] == "InvalidParameterValue" and _error(info)[2] == 400, bad_password

        with pytest.raises(ClientError) as info:
            rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True)
        assert _error(info)[0] == "InvalidDBClusterStateFault" and _error(info)[2] == 400

        with pytest.raises(ClientError) as info:
            rds.describe_db_instances(DBInstanceIdentifier=ident("e2e-missing-i"))
        assert _error(info)[0] == "DBInstanceNotFound" and _error(info)[2] == 404
        assert isinstance(info.value, rds.exceptions.DBInstanceNotFoundFault)

        with pytest.raises(ClientError) as info:
            rds.create_db_instance(DBInstanceIdentifier=db.instance_id, DBClusterIdentifier=db.cluster_id,
                                   Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        assert _error(info)[0] == "DBInstanceAlreadyExists" and _error(info)[2] == 400

        with pytest.raises(ClientError) as info:
            rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)  # it is available, not stopped
        assert _error(info)[0] == "InvalidDBClusterStateFault" and _error(info)[2] == 400
    finally:
        delete_db(rds, db)


def test_deletion_protection_and_final_snapshot(rds: Any) -> None:
    cid = ident("e2e-protect")
    rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                          MasterUsername=MASTER, MasterUserPassword=PASSWORD, DeletionProtection=True)
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    with pytest.raises(ClientError) as info:
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
    code, message, status = _error(info)
    assert (code, status) == ("InvalidParameterCombination", 400)
    assert "deletion protection" in message.lower()
    rds.modify_db_cluster(DBClusterIdentifier=cid, DeletionProtection=False, ApplyImmediately=True)
    with pytest.raises(ClientError) as info:
        rds.delete_db_cluster(DBClusterIdentifier=cid)  # neither SkipFinalSnapshot nor a snapshot name
    assert _error(info) == ("InvalidParameterCombination",
                            "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.", 400)
    assert rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]["Status"] == "available"

    rds.stop_db_cluster(DBClusterIdentifier=cid)
    wait_status(rds, cid, "stopped")
    with pytest.raises(ClientError) as info:
        rds.stop_db_cluster(DBClusterIdentifier=cid)
    code, message, status = _error(info)
    assert (code, status) == ("InvalidDBClusterStateFault", 400)
    assert "stopped" in message
    rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
    wait_cluster_gone(rds, cid)


def test_awscli_flow(server: Any) -> None:
    cid, iid = ident("e2e-cli"), ident("e2e-cli-i")
    created = server.cli_json(
        "rds", "create-db-cluster", "--db-cluster-identifier", cid, "--engine", "aurora-postgresql",
        "--engine-version", ENGINE_VERSION, "--master-username", MASTER, "--master-user-password", PASSWORD,
        "--database-name", "clidb", "--tags", "Key=env,Value=test",
    )
    assert created["DBCluster"]["DBClusterIdentifier"] == cid
    instance = server.cli_json("rds", "create-db-instance", "--db-instance-identifier", iid,
                               "--db-cluster-identifier", cid, "--engine", "aurora-postgresql",
                               "--db-instance-class", "db.r6g.large")
    assert instance["DBInstance"]["DBInstanceIdentifier"] == iid
    server.cli("rds", "wait", "db-instance-available", "--db-instance-identifier", iid)
    described = server.cli_json("rds", "describe-db-clusters", "--db-cluster-identifier", cid)
    cluster = described["DBClusters"][0]
    assert cluster["Status"] == "available" and cluster["DatabaseName"] == "clidb"
    assert re.fullmatch(r"cluster-[A-Z0-9]{26}", cluster["DbClusterResourceId"])
    assert cluster["DBClusterMembers"][0]["DBInstanceIdentifier"] == iid
    assert cluster["TagList"] == [{"Key": "env", "Value": "test"}]
    with psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user=MASTER, password=PASSWORD,
                         dbname="clidb", sslmode="require", connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    failed = server.cli("rds", "describe-db-clusters", "--db-cluster-identifier", cid + "-nope", check=False)
    assert failed.returncode != 0 and "DBClusterNotFoundFault" in failed.stderr

    server.cli_json("rds", "delete-db-instance", "--db-instance-identifier", iid, "--skip-final-snapshot")
    server.cli("rds", "wait", "db-instance-deleted", "--db-instance-identifier", iid)
    deleted = server.cli_json("rds", "delete-db-cluster", "--db-cluster-identifier", cid, "--skip-final-snapshot")
    assert deleted["DBCluster"]["Status"] == "deleting"
    wait_cluster_gone(server.client("rds"), cid)


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                hits.append(path)
        except OSError:
            continue
    return hits


def test_audit_redacts_the_master_password(server: Any, rds: Any) -> None:
    secret = "Audit-" + ident("pw").replace("-", "x")  # unique: searched for in every file
    db = create_db(rds, prefix="e2e-audit", password=secret)
    try:
        with db.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        new_secret = secret + "New"
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, MasterUserPassword=new_secret,
                              ApplyImmediately=True)
        wait_status(rds, db.cluster_id, "available", timeout=30)
        until(lambda: db.connect(password=new_secret).close() or True, what="login with the new password")

        trail = server.client("cloudtrail")
        events = trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateDBCluster"}])["Events"]
        mine = [json.loads(e["CloudTrailEvent"]) for e in events
                if db.cluster_id in e["CloudTrailEvent"]]
        assert mine, "CreateDBCluster not in the trail"
        params = {k.lower(): v for k, v in mine[0]["requestParameters"].items()}
        assert params["masteruserpassword"] == "HIDDEN_DUE_TO_SECURITY_REASONS", params
        assert params["masterusername"] == MASTER
        for needle in (secret.encode(), new_secret.encode()):
            assert _files_containing(server.data_dir, needle) == []
            assert server.log_path is not None and needle not in server.log_path.read_bytes()
    finally:
        delete_db(rds, db)
