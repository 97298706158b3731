"""Managed master passwords end to end, as the Aurora docs' best practice describes them: the policy
that enforces them, ``ManageMasterUserPassword`` creating the ``rds!cluster-*`` secret, the password
read with GetSecretValue opening the database through the endpoint, rotation on demand that keeps
established connections, customer KMS keys, turning management off and on, deletion — with unmodified
boto3, the AWS CLI and psycopg against a running auroral."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import (
    ENGINE_VERSION,
    FAST,
    MASTER,
    Db,
    create_db,
    delete_db,
    ident,
    until,
    wait_cluster_gone,
    wait_status,
)

ALLOW_SLR = {
    "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
    "Resource": "arn:aws:iam::*:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS",
    "Condition": {"StringLike": {"iam:AWSServiceName": "rds.amazonaws.com"}}}
# What AWS documents the caller needs for a managed master password with the default key.
ALLOW_MANAGED = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
    {"Effect": "Allow", "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"], "Resource": "*"},
    {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"},
    ALLOW_SLR]}
CREATE_ACTIONS = ["rds:CreateDBInstance", "rds:CreateDBCluster", "rds:RestoreDBInstanceFromS3",
                  "rds:RestoreDBClusterFromS3"]


def enforce(actions: list[str]) -> dict[str, Any]:
    """The documented policy that denies master passwords not managed by Secrets Manager."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": actions, "Resource": "*",
        "Condition": {"Bool": {"rds:ManageMasterUserPassword": False}}}]}


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def sm(server: Any) -> Any:
    return server.client("secretsmanager")


@dataclass
class Managed:
    db: Db
    secret_arn: str


def secret_value(sm: Any, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return dict(json.loads(sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))


def wait_secret_status(rds: Any, cluster_id: str, want: str, timeout: float = 30,
                       seen: list[str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cluster: dict[str, Any] = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
        status = cluster.get("MasterUserSecret", {}).get("SecretStatus")
        if seen is not None and (not seen or seen[-1] != status):
            seen.append(status)
        if status == want:
            return cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"{cluster_id}: SecretStatus {status}, not {want} (seen {seen})")
        time.sleep(0.05)


def create_managed(rds: Any, sm: Any, prefix: str, **extra: Any) -> Managed:
    cid, iid = ident(prefix), ident(prefix + "-i")
    out = rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                                MasterUsername=MASTER, ManageMasterUserPassword=True, DatabaseName="appdb", **extra)
    assert out["DBCluster"]["MasterUserSecret"]["SecretStatus"] == "creating"
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    cluster = wait_secret_status(rds, cid, "active")
    arn = cluster["MasterUserSecret"]["SecretArn"]
    password = secret_value(sm, arn)["password"]
    db = Db(cid, iid, cluster["Endpoint"], cluster["Port"], cluster["DbClusterResourceId"], password, "appdb")
    return Managed(db, arn)


def refused(db: Db, password: str) -> bool:
    try:
        db.connect(password=password).close()
    except psycopg.OperationalError as exc:
        return "password authentication failed" in str(exc)
    return False


def files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                hits.append(path)
        except OSError:
            continue
    return hits


def user(server: Any, *policies: dict[str, Any]) -> tuple[str, str, str, str]:
    iam = server.client("iam")
    name = ident("e2e-mp")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for i, doc in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, arn, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def managed(rds: Any, sm: Any) -> Iterator[Managed]:
    created = create_managed(rds, sm, "e2e-managed")
    yield created
    delete_db(rds, created.db)


def test_the_secret_opens_the_database(server: Any, rds: Any, sm: Any, managed: Managed) -> None:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=managed.db.cluster_id)["DBClusters"][0]
    secret = cluster["MasterUserSecret"]
    assert set(secret) == {"SecretArn", "SecretStatus", "KmsKeyId"}
    assert secret["SecretStatus"] == "active"
    name = secret["SecretArn"].split(":secret:", 1)[1]
    assert name.startswith("rds!cluster-") and name[-7] == "-"
    described = sm.describe_secret(SecretId=managed.secret_arn)
    assert described["OwningService"] == "rds"
    assert described["Description"] == f"Secret associated with primary RDS DB cluster: {cluster['DBClusterArn']}"
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags["aws:rds:primaryDBClusterArn"] == cluster["DBClusterArn"]
    assert tags["aws:secretsmanager:owningService"] == "rds"
    assert described["RotationEnabled"] is True
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 7
    kms = server.client("kms").describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert secret["KmsKeyId"] == kms["Arn"]  # the default key, alias/aws/secretsmanager

    # the AWS CLI reads the same value, and it is what the endpoint accepts
    out = server.cli_json("secretsmanager", "get-secret-value", "--secret-id", managed.secret_arn)
    value = json.loads(out["SecretString"])
    assert value["username"] == MASTER and value["password"] == managed.db.password
    with managed.db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MASTER,)


def test_rotation_on_demand(server: Any, rds: Any, sm: Any, managed: Managed) -> None:
    db, old = managed.db, managed.db.password
    with pytest.raises(ClientError) as info:
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, RotateMasterUserPassword=True)
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"

    established = db.connect()
    try:
        out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, RotateMasterUserPassword=True,
                                    ApplyImmediately=True)
        assert out["DBCluster"]["MasterUserSecret"]["SecretStatus"] == "rotating"
        seen: list[str] = ["rotating"]
        wait_secret_status(rds, db.cluster_id, "active", seen=seen)
        assert seen[0] == "rotating" and seen[-1] == "active"
        new = secret_value(sm, managed.secret_arn)["password"]
        assert new != old
        assert secret_value(sm, managed.secret_arn, "AWSPREVIOUS")["password"] == old
        with db.connect(password=new) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert refused(db, old)
        # a connection opened before the rotation keeps working
        assert established.execute("SELECT current_user").fetchone() == (MASTER,)
        described = sm.describe_secret(SecretId=managed.secret_arn)
        assert "LastRotatedDate" in described and "NextRotationDate" in described
        stages = {v["VersionId"]: v["VersionStages"] for v in
                  sm.list_secret_version_ids(SecretId=managed.secret_arn)["Versions"]}
        assert sorted(s for v in stages.values() for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
        db.password = new
    finally:
        established.close()

    # nothing in plaintext: neither password in the data directory's files or the server's log
    for needle in (old.encode(), new.encode()):
        assert files_containing(server.data_dir, needle) == []
        assert server.log_path is not None and needle not in server.log_path.read_bytes()


def test_rds_owned_secret_refuses_direct_changes(sm: Any, managed: Managed) -> None:
    with pytest.raises(ClientError) as info:
        sm.put_secret_value(SecretId=managed.secret_arn, SecretString='{"username":"x","password":"y"}')
    assert info.value.response["Error"]["Code"] in ("InvalidRequestException", "AccessDeniedException")
    with managed.db.connect() as conn:  # still the secret's password
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_enforcement_policy(server: Any, rds: Any, sm: Any) -> None:
    name, arn, key, secret = user(server, ALLOW_MANAGED, enforce(CREATE_ACTIONS))
    user_rds = server.client("rds", key, secret)
    cid = ident("e2e-enforce")
    with pytest.raises(ClientError) as info:
        user_rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                                   MasterUsername=MASTER, MasterUserPassword="Plain-pass-123")
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert info.value.response["Error"]["Message"] == (
        f"User: {arn} is not authorized to perform: rds:CreateDBCluster on resource: "
        f"arn:aws:rds:us-east-1:{server.account}:cluster:{cid} with an explicit deny in an identity-based policy")

    created = create_managed(user_rds, sm, "e2e-enforce")
    try:
        with created.db.connect() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (MASTER,)
        # with ModifyDBCluster in the deny too, management cannot be turned off
        server.client("iam").put_user_policy(UserName=name, PolicyName="p1", PolicyDocument=json.dumps(
            enforce([*CREATE_ACTIONS, "rds:ModifyDBInstance", "rds:ModifyDBCluster"])))
        with pytest.raises(ClientError) as info:
            user_rds.modify_db_cluster(DBClusterIdentifier=created.db.cluster_id, ManageMasterUserPassword=False,
                                       MasterUserPassword="Plain-pass-123", ApplyImmediately=True)
        assert info.value.response["Error"]["Code"] == "AccessDenied"
        assert "rds:ModifyDBCluster" in info.value.response["Error"]["Message"]
        assert "explicit deny" in info.value.response["Error"]["Message"]
        cluster = rds.describe_db_clusters(DBClusterIdentifier=created.db.cluster_id)["DBClusters"][0]
        assert cluster["MasterUserSecret"]["SecretArn"] == created.secret_arn
    finally:
        delete_db(rds, created.db)


def _our_secrets(sm: Any, cluster_arn: str) -> list[dict[str, Any]]:
    found = []
    for page in sm.get_paginator("list_secrets").paginate():
        for s in page["SecretList"]:
            if {"Key": "aws:rds:primaryDBClusterArn", "Value": cluster_arn} in s.get("Tags", []):
                found.append(s)
    return found


def test_missing_secrets_permission_creates_nothing(server: Any, rds: Any, sm: Any) -> None:
    policy = json.loads(json.dumps(ALLOW_MANAGED))
    policy["Statement"][1]["Action"] = ["secretsmanager:TagResource"]
    _, _, key, secret = user(server, policy)
    user_rds = server.client("rds", key, secret)
    cid = ident("e2e-nosm")
    with pytest.raises(ClientError) as info:
        user_rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=ENGINE_VERSION,
                                   MasterUsername=MASTER, ManageMasterUserPassword=True)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert "secretsmanager:CreateSecret" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        rds.describe_db_clusters(DBClusterIdentifier=cid)
    assert info.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    assert _our_secrets(sm, f"arn:aws:rds:us-east-1:{server.account}:cluster:{cid}") == []


def test_customer_key_and_reencryption(server: Any, rds: Any, sm: Any) -> None:
    kms = server.client("kms")
    key_arn = kms.create_key(Description="managed master password")["KeyMetadata"]["Arn"]
    created = create_managed(rds, sm, "e2e-cmk", MasterUserSecretKmsKeyId=key_arn)
    try:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=created.db.cluster_id)["DBClusters"][0]
        assert cluster["MasterUserSecret"]["KmsKeyId"] == key_arn
        assert sm.describe_secret(SecretId=created.secret_arn)["KmsKeyId"] in (key_arn, key_arn.split("/")[-1])
        with created.db.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # another key: the secret is re-encrypted, its value unchanged
        other = kms.create_key(Description="second")["KeyMetadata"]["Arn"]
        out = rds.modify_db_cluster(DBClusterIdentifier=created.db.cluster_id, MasterUserSecretKmsKeyId=other,
                                    ApplyImmediately=True)
        assert out["DBCluster"]["MasterUserSecret"]["KmsKeyId"] == other
        assert secret_value(sm, created.secret_arn)["password"] == created.db.password
        # with the new key disabled the value cannot be decrypted any more: the key really is in use
        kms.disable_key(KeyId=other)
        with pytest.raises(ClientError):
            sm.get_secret_value(SecretId=created.secret_arn)
        kms.enable_key(KeyId=other)
    finally:
        delete_db(rds, created.db)


def test_management_off_and_on_again(server: Any, rds: Any, sm: Any) -> None:
    db = create_db(rds, prefix="e2e-toggle", password="Own-pass-123")
    try:
        with pytest.raises(ClientError) as info:
            rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, ManageMasterUserPassword=True,
                                  MasterUserPassword="Other-pass-123", ApplyImmediately=True)
        assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"

        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, ManageMasterUserPassword=True, ApplyImmediately=True)
        cluster = wait_secret_status(rds, db.cluster_id, "active")
        wait_status(rds, db.cluster_id, "available")
        arn = cluster["MasterUserSecret"]["SecretArn"]
        password = secret_value(sm, arn)["password"]
        until(lambda: db.connect(password=password).close() or True, what="login with the secret's password")
        assert refused(db, "Own-pass-123")

        with pytest.raises(ClientError) as info:
            rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, ManageMasterUserPassword=False,
                                  ApplyImmediately=True)
        assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
        assert info.value.response["Error"]["Message"] == (
            "MasterUserPassword must be provided when ManageMasterUserPassword is set to false.")
        out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, ManageMasterUserPassword=False,
                                    MasterUserPassword="Back-to-own-1", ApplyImmediately=True)
        assert "MasterUserSecret" not in out["DBCluster"]
        wait_status(rds, db.cluster_id, "available")
        until(lambda: db.connect(password="Back-to-own-1").close() or True, what="login with the own password")
        with pytest.raises(ClientError) as info:
            sm.describe_secret(SecretId=arn)
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    finally:
        delete_db(rds, db)


def test_delete_cluster_deletes_the_secret(rds: Any, sm: Any) -> None:
    created = create_managed(rds, sm, "e2e-mpdel")
    rds.delete_db_instance(DBInstanceIdentifier=created.db.instance_id, SkipFinalSnapshot=True)
    until(lambda: _deleted(rds, created.db), what="instance deleted", timeout=30)
    rds.delete_db_cluster(DBClusterIdentifier=created.db.cluster_id, SkipFinalSnapshot=True)
    wait_cluster_gone(rds, created.db.cluster_id)
    with pytest.raises(ClientError) as info:
        sm.describe_secret(SecretId=created.secret_arn)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _deleted(rds: Any, db: Db) -> bool:
    try:
        rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)
    except rds.exceptions.DBInstanceNotFoundFault:
        return True
    return False
