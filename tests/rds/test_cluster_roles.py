"""AddRoleToDBCluster / RemoveRoleFromDBCluster against the fake runtime and directory: AssociatedRoles,
AWS's errors, and the second authorization (iam:PassRole with iam:PassedToService). (End to end with
the real IAM evaluator: test_events_e2e.py.)"""

from __future__ import annotations

from .conftest import Env
from .fakes import ACCOUNT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/service/s3-import"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/s3-export"


async def _ready(env: Env) -> None:
    env.directory.iam_roles |= {ROLE, OTHER}
    await env.cluster()


async def test_add_describe_remove(env: Env) -> None:
    await _ready(env)
    assert (await env.describe_cluster())["AssociatedRoles"] == []
    assert await env.call("AddRoleToDBCluster", DBClusterIdentifier="C1", RoleArn=ROLE, FeatureName="s3Import") == {}
    await env.call("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=OTHER, FeatureName="s3Export")
    assert (await env.describe_cluster())["AssociatedRoles"] == [
        {"RoleArn": ROLE, "FeatureName": "s3Import", "Status": "ACTIVE"},
        {"RoleArn": OTHER, "FeatureName": "s3Export", "Status": "ACTIVE"},
    ]
    pass_role = [c for c in env.authorizer.checks if c[0] == "iam:PassRole"]
    assert pass_role == [("iam:PassRole", [ROLE], {"iam:PassedToService": "rds.amazonaws.com"}),
                         ("iam:PassRole", [OTHER], {"iam:PassedToService": "rds.amazonaws.com"})]
    assert env.directory.assume_checks[-1] == (OTHER, "rds.amazonaws.com", {
        "aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:c1"})
    # what RDS can do with a role now: a trust policy that no longer admits RDS, a deleted role
    env.directory.untrusting.add(ROLE)
    env.directory.iam_roles.discard(OTHER)
    assert [r["Status"] for r in (await env.describe_cluster())["AssociatedRoles"]] == ["INVALID", "INVALID"]
    env.directory.untrusting.clear()
    env.directory.iam_roles.add(OTHER)
    # kept across a restart of auroral
    assert len((await env.reopen().describe_cluster())["AssociatedRoles"]) == 2
    err = await env.fails("RemoveRoleFromDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3Export")
    assert (err.code, err.status) == ("DBClusterRoleNotFound", 404)
    await env.call("RemoveRoleFromDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE)
    assert [r["RoleArn"] for r in (await env.describe_cluster())["AssociatedRoles"]] == [OTHER]
    err = await env.fails("RemoveRoleFromDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE)
    assert err.message == f"Role ARN {ROLE} cannot be found for DB Cluster: c1. Verify your role ARN and try again."


async def test_errors(env: Env) -> None:
    await _ready(env)
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="nope", RoleArn=ROLE, FeatureName="s3Import")
    assert (err.code, err.status) == ("DBClusterNotFoundFault", 404)
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE)
    assert (err.code, err.message) == ("InvalidParameterValue", "The feature-name parameter must be provided with "
                                       "the current operation for the Aurora (PostgreSQL) engine.")
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3import")
    assert err.code == "InvalidParameterValue" and "s3import" in err.message
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn="arn:aws:iam::1:user/x",
                          FeatureName="s3Import")
    assert err.code == "InvalidParameterValue"
    missing = f"arn:aws:iam::{ACCOUNT}:role/missing"
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=missing, FeatureName="s3Import")
    assert (err.code, err.message) == ("InvalidParameterValue", "IAM role ARN value is invalid or does not include "
                                       "the required permissions for: s3Import")
    await env.call("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3Import")
    for feature in ("s3Import", "s3Export"):  # the same role again, also for another feature
        err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName=feature)
        assert (err.code, err.status, err.message) == (
            "DBClusterRoleAlreadyExists", 400,
            f"Role ARN {ROLE} is already associated with DB Cluster: c1. Verify your role ARN and try again.")
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=OTHER, FeatureName="s3Import")
    assert err.code == "DBClusterRoleAlreadyExists"  # one role per feature
    others = [f"arn:aws:iam::{ACCOUNT}:role/r{i}" for i in range(5)]
    env.directory.iam_roles |= set(others)
    for arn, feature in zip(others, ("s3Export", "Lambda", "SageMaker", "Comprehend", "Bedrock"), strict=True):
        if arn == others[-1]:
            err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=arn, FeatureName=feature)
            assert (err.code, err.status) == ("DBClusterRoleQuotaExceeded", 400)
        else:
            await env.call("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=arn, FeatureName=feature)


async def test_state_and_pass_role(env: Env) -> None:
    env.directory.iam_roles.add(ROLE)
    await env.cluster(drain=False)  # creating
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3Import")
    assert (err.code, err.message) == ("InvalidDBClusterStateFault", "DB Cluster c1 is not available for IAM role "
                                       "association, disassociation, or updates. Current DB cluster status: creating")
    await env.service.drain()
    env.authorizer.deny.add("iam:PassRole")
    err = await env.fails("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3Import")
    assert (err.code, err.status) == ("AccessDenied", 403)
    assert (await env.describe_cluster())["AssociatedRoles"] == []
    env.authorizer.deny.clear()
    await env.call("AddRoleToDBCluster", DBClusterIdentifier="c1", RoleArn=ROLE, FeatureName="s3Import")
    # a renamed cluster keeps its roles
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", NewDBClusterIdentifier="c2", ApplyImmediately=True)
    assert len((await env.describe_cluster("c2"))["AssociatedRoles"]) == 1
