"""RDS events and cluster roles end to end: a real server, real PostgreSQL, unmodified boto3 and the AWS
CLI. A cluster is created, gets a reader, the reader reboots, the cluster fails over to it, everything is
deleted: DescribeEvents (and `aws rds describe-events`) find each of these with AWS's messages, `auroral
events` with AWS's event IDs. AddRoleToDBCluster is authorized twice, rds:AddRoleToDBCluster and
iam:PassRole with iam:PassedToService, by the real IAM evaluator."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server

from .e2e_helpers import create_db, delete_db, ident, until, wait_cluster_gone, wait_instance_gone


@pytest.fixture(scope="module")
def rds(server: Server) -> Any:
    return server.client("rds")


def _available(rds: Any, instance_id: str) -> bool:
    return bool(rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBInstanceStatus"]
                == "available")


def _cluster_available(rds: Any, cluster_id: str) -> bool:
    return bool(rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"] == "available")


def _messages(rds: Any, source_type: str, source_id: str) -> list[str]:
    out = rds.describe_events(SourceType=source_type, SourceIdentifier=source_id, Duration=60)
    return [e["Message"] for e in out["Events"]]


def _auroral_events(server: Server, source_id: str) -> list[tuple[str, str]]:
    """(event ID, message) from `auroral events` on the server's data directory."""
    proc = subprocess.run([sys.executable, "-m", "auroral.cli", "events", "--data-dir", str(server.data_dir),
                           "--source-identifier", source_id, "--json"],
                          capture_output=True, text=True, timeout=60, env=server.env, check=True)
    return [(d["EventID"], d["Message"]) for d in map(json.loads, proc.stdout.splitlines())]


def test_lifecycle_events(server: Server, rds: Any) -> None:
    db = create_db(rds, prefix="e2e-ev")
    reader = ident("e2e-ev-r")
    try:
        rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=db.cluster_id,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        until(lambda: _available(rds, reader), timeout=90, what="the reader available")
        rds.reboot_db_instance(DBInstanceIdentifier=reader)
        until(lambda: _available(rds, reader), timeout=90, what="the reader rebooted")
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id, TargetDBInstanceIdentifier=reader)
        until(lambda: _cluster_available(rds, db.cluster_id), timeout=90, what="the failover done")
        zones = {rds.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0]["AvailabilityZone"]
                 for i in (db.instance_id, reader)}
        started = ("RDS-EVENT-0072", f"Started same AZ failover to DB instance: {reader}") if len(zones) == 1 else \
            ("RDS-EVENT-0073", f"Started cross AZ failover to DB instance: {reader}")

        cluster_events = [("RDS-EVENT-0170", "DB cluster created"), started,
                          ("RDS-EVENT-0071", f"Completed failover to DB instance: {reader}")]
        assert _messages(rds, "db-cluster", db.cluster_id) == [m for _, m in cluster_events]
        assert _auroral_events(server, db.cluster_id) == cluster_events
        assert _messages(rds, "db-instance", reader) == ["DB instance created", "DB instance restarted"]
        assert _auroral_events(server, reader) == [("RDS-EVENT-0005", "DB instance created"),
                                                   ("RDS-EVENT-0006", "DB instance restarted")]
        table = subprocess.run([sys.executable, "-m", "auroral.cli", "events", "--data-dir", str(server.data_dir)],
                               capture_output=True, text=True, timeout=60, env=server.env, check=True).stdout
        assert any("RDS-EVENT-0006" in line and reader in line and line.endswith("DB instance restarted")
                   for line in table.splitlines())
        failovers = rds.describe_events(SourceType="db-cluster", EventCategories=["failover"])["Events"]
        assert [e["Message"] for e in failovers if e["SourceIdentifier"] == db.cluster_id] == \
            [m for _, m in cluster_events[1:]]
        cluster_arn = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["DBClusterArn"]
        assert {e["SourceArn"] for e in failovers if e["SourceIdentifier"] == db.cluster_id} == {cluster_arn}

        # the AWS CLI, unmodified
        out = server.cli_json("rds", "describe-events", "--source-type", "db-cluster", "--source-identifier",
                              db.cluster_id, "--duration", "30")
        assert [e["Message"] for e in out["Events"]] == [m for _, m in cluster_events]
        assert out["Events"][0]["EventCategories"] == ["creation"]

        for instance in (reader, db.instance_id):
            rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
            wait_instance_gone(rds, instance)
        rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True)
        wait_cluster_gone(rds, db.cluster_id)
        # a deleted resource's events are still there
        assert _messages(rds, "db-cluster", db.cluster_id)[-1] == "DB cluster deleted"
        assert _auroral_events(server, db.cluster_id)[-1] == ("RDS-EVENT-0171", "DB cluster deleted")
        assert _auroral_events(server, reader)[-1] == ("RDS-EVENT-0003", "DB instance deleted")
        with pytest.raises(ClientError) as info:
            rds.describe_events(SourceIdentifier=db.cluster_id)
        assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
    finally:
        delete_db(rds, db)


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def _role(iam: Any, service: str = "rds.amazonaws.com") -> str:
    return str(iam.create_role(RoleName=ident("e2e-s3"), AssumeRolePolicyDocument=_trust(service))["Role"]["Arn"])


def _statuses(rds: Any, cluster_id: str) -> list[tuple[str, str]]:
    roles = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["AssociatedRoles"]
    return [(r["FeatureName"], r["Status"]) for r in roles]


def test_add_role_needs_pass_role(server: Server, rds: Any, make_user: Any) -> None:
    iam = server.client("iam")
    role = _role(iam)
    db = create_db(rds, prefix="e2e-role")
    try:
        allow_rds = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["rds:*"], "Resource": "*"}]}
        user = make_user(allow_rds)
        as_user = server.client("rds", user.access_key, user.secret_key)
        with pytest.raises(ClientError) as info:
            as_user.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="s3Import")
        error = info.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "AccessDenied", f"User: {user.arn} is not authorized to perform: iam:PassRole on resource: {role} "
            "because no identity-based policy allows the iam:PassRole action")
        assert rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["AssociatedRoles"] == []

        # PassRole only towards another service does not count
        pass_to = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
                                                            "Condition": {"StringEquals": {"iam:PassedToService":
                                                                                           "ec2.amazonaws.com"}}}]}
        iam.put_user_policy(UserName=user.name, PolicyName="pass", PolicyDocument=json.dumps(pass_to))
        with pytest.raises(ClientError) as info:
            as_user.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="s3Import")
        assert info.value.response["Error"]["Code"] == "AccessDenied"

        pass_to["Statement"][0]["Condition"]["StringEquals"]["iam:PassedToService"] = "rds.amazonaws.com"
        iam.put_user_policy(UserName=user.name, PolicyName="pass", PolicyDocument=json.dumps(pass_to))
        as_user.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="s3Import")
        roles = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["AssociatedRoles"]
        assert roles == [{"RoleArn": role, "FeatureName": "s3Import", "Status": "ACTIVE"}]
        with pytest.raises(rds.exceptions.DBClusterRoleAlreadyExistsFault):
            rds.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="s3Import")

        # a role that does not exist, a feature the version does not have
        missing = role.rsplit("/", 1)[0] + "/no-such-role"
        with pytest.raises(ClientError) as info:
            rds.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=missing, FeatureName="Lambda")
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
        with pytest.raises(ClientError) as info:
            rds.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="NoSuchFeature")
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"

        # the status is whether RDS may assume the role now (its trust policy, evaluated by IAM)
        ec2_role = _role(iam, "ec2.amazonaws.com")
        rds.add_role_to_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=ec2_role, FeatureName="s3Export")
        assert _statuses(rds, db.cluster_id) == [("s3Import", "ACTIVE"), ("s3Export", "INVALID")]
        iam.update_assume_role_policy(RoleName=ec2_role.rsplit("/", 1)[1], PolicyDocument=_trust("rds.amazonaws.com"))
        assert _statuses(rds, db.cluster_id) == [("s3Import", "ACTIVE"), ("s3Export", "ACTIVE")]
        iam.delete_role(RoleName=ec2_role.rsplit("/", 1)[1])
        assert _statuses(rds, db.cluster_id) == [("s3Import", "ACTIVE"), ("s3Export", "INVALID")]
        rds.remove_role_from_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=ec2_role)

        as_user.remove_role_from_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role, FeatureName="s3Import")
        assert rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["AssociatedRoles"] == []
        with pytest.raises(rds.exceptions.DBClusterRoleNotFoundFault):
            rds.remove_role_from_db_cluster(DBClusterIdentifier=db.cluster_id, RoleArn=role)
    finally:
        delete_db(rds, db)
