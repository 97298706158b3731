"""IAM around RDS, end to end: the service-linked role the account's first create needs (on a fresh
server, so that the role does not exist yet), and the documented policy that enforces managed master
passwords."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server

from .e2e_helpers import ENGINE_VERSION, MASTER, PASSWORD, create_db, delete_db, ident, wait_cluster_gone

SLR_MESSAGE = ("Unable to create the resource. Verify that you have permission to create service linked role. "
               "Otherwise wait and try again later.")
ALLOW_RDS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:*", "Resource": "*"}]}
ALLOW_SLR = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
    "Resource": "arn:aws:iam::*:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS",
    "Condition": {"StringLike": {"iam:AWSServiceName": "rds.amazonaws.com"}}}]}
ENFORCE_MANAGED = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny",
    "Action": ["rds:CreateDBInstance", "rds:CreateDBCluster", "rds:RestoreDBInstanceFromS3",
               "rds:RestoreDBClusterFromS3"],
    "Resource": "*",
    "Condition": {"Bool": {"rds:ManageMasterUserPassword": False}}}]}


def _user(iam: Any, *policies: dict[str, Any]) -> tuple[str, str, str]:
    name = ident("e2e-user")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for i, doc in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def _create_args(cid: str) -> dict[str, Any]:
    return {"DBClusterIdentifier": cid, "Engine": "aurora-postgresql", "EngineVersion": ENGINE_VERSION,
            "MasterUsername": MASTER, "MasterUserPassword": PASSWORD}


def test_service_linked_role_on_a_fresh_account() -> None:
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="333344445555")
    try:
        iam = srv.client("iam")
        with pytest.raises(ClientError) as info:
            iam.get_role(RoleName="AWSServiceRoleForRDS")
        assert info.value.response["Error"]["Code"] == "NoSuchEntity"

        user_arn, user_key, user_secret = _user(iam, ALLOW_RDS)
        rds = srv.client("rds", user_key, user_secret)
        cid = ident("e2e-slr")
        with pytest.raises(ClientError) as info:
            rds.create_db_cluster(**_create_args(cid))
        error = info.value.response["Error"]
        assert (error["Code"], error["Message"]) == ("InvalidParameterValue", SLR_MESSAGE)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert rds.describe_db_clusters()["DBClusters"] == []
        with pytest.raises(ClientError):
            iam.get_role(RoleName="AWSServiceRoleForRDS")

        # the condition must name rds.amazonaws.com: an allow for another service does not count
        other = json.loads(json.dumps(ALLOW_SLR))
        other["Statement"][0]["Condition"]["StringLike"]["iam:AWSServiceName"] = "ec2.amazonaws.com"
        iam.put_user_policy(UserName=user_arn.rsplit("/", 1)[1], PolicyName="slr", PolicyDocument=json.dumps(other))
        with pytest.raises(ClientError) as info:
            rds.create_db_cluster(**_create_args(cid))
        assert info.value.response["Error"]["Message"] == SLR_MESSAGE

        iam.put_user_policy(UserName=user_arn.rsplit("/", 1)[1], PolicyName="slr",
                            PolicyDocument=json.dumps(ALLOW_SLR))
        db = create_db(rds, prefix="e2e-slr")
        with db.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        role = srv.cli_json("iam", "get-role", "--role-name", "AWSServiceRoleForRDS")["Role"]
        assert role["Path"] == "/aws-service-role/rds.amazonaws.com/"
        assert role["Arn"] == ("arn:aws:iam::333344445555:role/aws-service-role/rds.amazonaws.com/"
                               "AWSServiceRoleForRDS")
        trust = role["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"]["Service"] in ("rds.amazonaws.com", ["rds.amazonaws.com"])
        attached = iam.list_attached_role_policies(RoleName="AWSServiceRoleForRDS")["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["AmazonRDSServiceRolePolicy"]

        # refused while clusters exist: the deletion task fails, the role stays
        task = iam.delete_service_linked_role(RoleName="AWSServiceRoleForRDS")["DeletionTaskId"]
        status = iam.get_service_linked_role_deletion_status(DeletionTaskId=task)
        assert status["Status"] == "FAILED" and status["Reason"]["Reason"]
        assert iam.get_role(RoleName="AWSServiceRoleForRDS")["Role"]["RoleName"] == "AWSServiceRoleForRDS"

        delete_db(rds, db)
        wait_cluster_gone(rds, db.cluster_id)
        task = iam.delete_service_linked_role(RoleName="AWSServiceRoleForRDS")["DeletionTaskId"]
        assert iam.get_service_linked_role_deletion_status(DeletionTaskId=task)["Status"] == "SUCCEEDED"
        with pytest.raises(ClientError):
            iam.get_role(RoleName="AWSServiceRoleForRDS")
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)


def test_enforcement_policy_denies_master_password(server: Any) -> None:
    iam = server.client("iam")
    arn, key, secret = _user(iam, ALLOW_RDS, ALLOW_SLR, ENFORCE_MANAGED)
    rds = server.client("rds", key, secret)
    cid = ident("e2e-enforced")
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster(**_create_args(cid))
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Message"] == (
        f"User: {arn} is not authorized to perform: rds:CreateDBCluster on resource: "
        f"arn:aws:rds:us-east-1:{server.account}:cluster:{cid} with an explicit deny in an identity-based policy")
    with pytest.raises(ClientError) as info:
        server.client("rds").describe_db_clusters(DBClusterIdentifier=cid)
    assert info.value.response["Error"]["Code"] == "DBClusterNotFoundFault"

    # the deny is about the password: a managed password is not denied by this policy (this user
    # lacks what Secrets Manager needs, which is what the create is refused for now)
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", MasterUsername=MASTER,
                              ManageMasterUserPassword=True)
    message = info.value.response["Error"]["Message"]
    assert "secretsmanager:CreateSecret" in message and "explicit deny" not in message, message

    # and without the enforcement policy the same user may create with a password
    iam.delete_user_policy(UserName=arn.rsplit("/", 1)[1], PolicyName="p2")
    db = create_db(rds, prefix="e2e-enforced", wait=True)
    try:
        with db.connect() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (MASTER,)
    finally:
        delete_db(rds, db)
