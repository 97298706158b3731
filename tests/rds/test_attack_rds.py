"""Attacks on RDS authorization through the running server (adversarial review, second pass).

* Tag-based Deny on subnet groups: ``aws:ResourceTag/*`` (and ``rds:subgrp-tag/*``) of the DB subnet
  group a request acts on or names (Modify/Delete, or CreateDBCluster placing a cluster in it).
* CreateDBInstance names the new instance and the cluster it joins: the cluster's tags decide for the
  cluster, so an instance (its own endpoint, maybe public) cannot be added to a tag-protected cluster.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys

from .e2e_helpers import PASSWORD, ident

PROD_TAG = [{"Key": "env", "Value": "prod"}]
DENY_PROD = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["rds:*", "ec2:Describe*", "iam:CreateServiceLinkedRole"], "Resource": "*"},
    {"Effect": "Deny", "Action": "rds:*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}},
]}


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "AccessDenied", info.value.response
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _attacker(server: Server, make_user: Any, policy: dict[str, Any] = DENY_PROD) -> Any:
    user: UserKeys = make_user(policy)
    return server.client("rds", user.access_key, user.secret_key)


def test_tag_protected_subnet_group(server: Server, make_user: Any) -> None:
    rds, ec2 = server.client("rds"), server.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
    name = f"prod-{secrets.token_hex(3)}"
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="prod", SubnetIds=subnets,
                               Tags=PROD_TAG)
    try:
        attacker = _attacker(server, make_user)
        for spelling in (name, name.upper()):
            _denied(attacker.delete_db_subnet_group, DBSubnetGroupName=spelling)
            _denied(attacker.modify_db_subnet_group, DBSubnetGroupName=spelling, SubnetIds=subnets[:2],
                    DBSubnetGroupDescription="mine now")
        # a cluster placed in it: refused before the handler (which would refuse the missing user name)
        _denied(attacker.create_db_cluster, DBClusterIdentifier=ident("sneaky"), Engine="aurora-postgresql",
                DBSubnetGroupName=name, MasterUserPassword=PASSWORD)
        (group,) = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
        assert group["DBSubnetGroupDescription"] == "prod"
    finally:
        rds.delete_db_subnet_group(DBSubnetGroupName=name)


def test_instance_into_a_tag_protected_cluster(server: Server, make_user: Any) -> None:
    rds = server.client("rds")
    cluster = ident("prodc")
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="master",
                          MasterUserPassword=PASSWORD, Tags=PROD_TAG)
    try:
        attacker = _attacker(server, make_user)
        for spelling in (cluster, cluster.upper()):
            # an instance class the handler refuses: only authorization can answer AccessDenied
            _denied(attacker.create_db_instance, DBInstanceIdentifier=ident("sneaky"), DBClusterIdentifier=spelling,
                    Engine="aurora-postgresql", DBInstanceClass="db.nope.large", PubliclyAccessible=True)
        assert rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"] == []
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)


def test_moving_the_master_secret_off_a_key_the_caller_may_not_decrypt_with(server: Server, make_user: Any) -> None:
    """ModifyDBCluster MasterUserSecretKmsKeyId re-encrypts the rds!cluster secret: like Secrets Manager's
    UpdateSecret KmsKeyId it needs kms:Decrypt on the key the secret is encrypted with now. Otherwise a
    caller the customer key keeps from reading the master password moves the secret to the AWS managed
    key and reads it from there (even under the documented policy that forbids resetting it)."""
    from .test_managed_password import create_managed, enforce

    rds, sm, kms = server.client("rds"), server.client("secretsmanager"), server.client("kms")
    key_arn = kms.create_key(Description="guards the master password")["KeyMetadata"]["Arn"]
    created = create_managed(rds, sm, "atk-cmk", MasterUserSecretKmsKeyId=key_arn)
    try:
        user: UserKeys = make_user(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["rds:*", "secretsmanager:*", "kms:*"], "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": key_arn}]},
            enforce(["rds:ModifyDBCluster"]))
        attacker_sm = server.client("secretsmanager", user.access_key, user.secret_key)
        attacker_rds = server.client("rds", user.access_key, user.secret_key)
        with pytest.raises(ClientError) as info:
            attacker_sm.get_secret_value(SecretId=created.secret_arn)
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"
        for target in ("alias/aws/secretsmanager", kms.create_key(Description="mine")["KeyMetadata"]["Arn"]):
            _denied(attacker_rds.modify_db_cluster, DBClusterIdentifier=created.db.cluster_id,
                    MasterUserSecretKmsKeyId=target, ApplyImmediately=True)
        cluster = rds.describe_db_clusters(DBClusterIdentifier=created.db.cluster_id)["DBClusters"][0]
        assert cluster["MasterUserSecret"]["KmsKeyId"] == key_arn
        with pytest.raises(ClientError):
            attacker_sm.get_secret_value(SecretId=created.secret_arn)
    finally:
        from .e2e_helpers import delete_db

        delete_db(rds, created.db)


def test_storage_encryption_enforced_when_the_request_omits_it(server: Server, make_user: Any) -> None:
    """The documented policy that enforces encrypted storage denies a create that omits StorageEncrypted
    (an absent key would not match ``Bool ... false``), and an instance joining an unencrypted cluster."""
    rds = server.client("rds")
    plain = ident("plain")
    rds.create_db_cluster(DBClusterIdentifier=plain, Engine="aurora-postgresql", MasterUsername="master",
                          MasterUserPassword=PASSWORD)
    try:
        attacker = _attacker(server, make_user, {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["rds:*", "iam:CreateServiceLinkedRole"], "Resource": "*"},
            {"Effect": "Deny", "Action": ["rds:CreateDBCluster", "rds:CreateDBInstance"], "Resource": "*",
             "Condition": {"Bool": {"rds:StorageEncrypted": "false"}}}]})
        # no MasterUsername: a create authorization lets through fails in the handler instead
        _denied(attacker.create_db_cluster, DBClusterIdentifier=ident("sneaky"), Engine="aurora-postgresql")
        _denied(attacker.create_db_cluster, DBClusterIdentifier=ident("sneaky"), Engine="aurora-postgresql",
                StorageEncrypted=False)
        for allowed in ({"StorageEncrypted": True}, {"KmsKeyId": "alias/aws/rds"}):
            with pytest.raises(ClientError) as info:
                attacker.create_db_cluster(DBClusterIdentifier=ident("enc"), Engine="aurora-postgresql", **allowed)
            assert info.value.response["Error"]["Code"] == "InvalidParameterValue", info.value.response
        _denied(attacker.create_db_instance, DBInstanceIdentifier=ident("sneaky"), DBClusterIdentifier=plain,
                Engine="aurora-postgresql", DBInstanceClass="db.nope.large")
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=plain, SkipFinalSnapshot=True)


def test_a_tag_protected_parameter_group_is_not_taken_up_by_modify(server: Server, make_user: Any) -> None:
    """ModifyDBCluster names the cluster and the parameter group it switches to: each is decided with its
    own tags, so a prod-tagged group is not taken up by a cluster that is not (nor the other way)."""
    rds = server.client("rds")
    group, cluster = ident("prodpg"), ident("devc")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="prod", Tags=PROD_TAG)
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="master",
                          MasterUserPassword=PASSWORD)
    try:
        attacker = _attacker(server, make_user)
        for spelling in (group, group.upper()):
            _denied(attacker.modify_db_cluster, DBClusterIdentifier=cluster, DBClusterParameterGroupName=spelling,
                    ApplyImmediately=True)
        assert rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0][
            "DBClusterParameterGroup"] != group
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)
        for _ in range(100):
            try:
                rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)
                break
            except ClientError:
                import time

                time.sleep(0.3)
