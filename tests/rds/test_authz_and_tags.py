"""The authorization table covers every RDS operation; the provider's ``authz_keys`` hook supplies
tag and master-password condition keys; tags by ARN; engine versions from the runtime."""

from __future__ import annotations

import inspect

import pytest

from auroral.api.actions import table
from auroral.api.protocol import service_model
from auroral.errors import AwsError
from auroral.rds.actions import ACTIONS
from auroral.rds.engine_versions import MINORS
from auroral.rds.service import RdsService

from .conftest import Env
from .fakes import FakeAuthorizer, make_ctx

IMPLEMENTED = sorted(
    name for name in service_model("rds").operation_names if inspect.isfunction(getattr(RdsService, name, None))
)


def test_every_implemented_operation_has_an_action_entry() -> None:
    assert len(IMPLEMENTED) == 49  # + DB subnet groups (4), DescribeCertificates, FailoverDBCluster, custom cluster endpoints (4),
    # DescribeOrderableDBInstanceOptions, DescribePendingMaintenanceActions, ApplyPendingMaintenanceAction,
    # DescribeEvents, DescribeEventCategories, AddRoleToDBCluster, RemoveRoleFromDBCluster,
    # DescribeDBLogFiles, DownloadDBLogFilePortion, cluster snapshots (7), RestoreDBClusterToPointInTime
    assert sorted(ACTIONS) == IMPLEMENTED
    joined = table()
    for op in IMPLEMENTED:
        spec = joined[("rds", op)]
        assert spec.action == f"rds:{op}"


_A = "arn:aws:rds:us-east-1:123456789012:"


@pytest.mark.parametrize(("op", "params", "arns"), [
    ("CreateDBCluster", {"DBClusterIdentifier": "C1"}, [_A + "cluster:c1"]),
    ("CreateDBCluster", {"DBClusterIdentifier": "c1", "DBClusterParameterGroupName": "PG", "DBSubnetGroupName": "Net"},
     [_A + "cluster:c1", _A + "cluster-pg:pg", _A + "subgrp:net"]),
    ("CreateDBInstance", {"DBInstanceIdentifier": "I1", "DBClusterIdentifier": "c1"}, [_A + "db:i1", _A + "cluster:c1"]),
    ("DescribeDBClusters", {}, [_A + "cluster:*"]),
    ("DescribeDBClusters", {"DBClusterIdentifier": _A + "cluster:DeMo"}, [_A + "cluster:demo"]),
    # Where the handler takes no ARN, an ARN is an identifier that names nothing (never its last segment).
    ("ModifyDBCluster", {"DBClusterIdentifier": _A + "cluster:demo"}, [_A + "cluster:" + _A.lower() + "cluster:demo"]),
    ("RebootDBInstance", {"DBInstanceIdentifier": "DEMO-1"}, [_A + "db:demo-1"]),
    ("ModifyDBClusterParameterGroup", {"DBClusterParameterGroupName": "G"}, [_A + "cluster-pg:g"]),
    ("DeleteDBSubnetGroup", {"DBSubnetGroupName": "Net"}, [_A + "subgrp:net"]),
    ("ListTagsForResource", {"ResourceName": _A + "db:I1"}, [_A + "db:i1"]),
])
async def test_resources_are_canonical(env: Env, op: str, params: dict[str, str], arns: list[str]) -> None:
    ctx = make_ctx(FakeAuthorizer(), op, params)
    assert ACTIONS[op].resolve(ctx, env.service, params) == arns


@pytest.mark.parametrize(("op", "params", "code"), [
    ("DescribeDBClusters", {"DBClusterIdentifier": "arn:aws:rds:us-west-2:123456789012:cluster:demo"},
     "DBClusterNotFoundFault"),
    ("DescribeDBClusters", {"DBClusterIdentifier": "arn:aws:rds:us-east-1:210987654321:cluster:demo"},
     "DBClusterNotFoundFault"),
    ("DescribeDBClusters", {"DBClusterIdentifier": "arn:aws-cn:rds:us-east-1:123456789012:cluster:demo"},
     "DBClusterNotFoundFault"),
    ("DescribeDBClusters", {"DBClusterIdentifier": _A + "db:demo"}, "DBClusterNotFoundFault"),
    ("DescribeDBInstances", {"DBInstanceIdentifier": _A + "cluster:demo-1"}, "DBInstanceNotFound"),
    ("AddTagsToResource", {"ResourceName": "arn:aws:rds:eu-west-1:123456789012:cluster:demo"}, "InvalidParameterValue"),
    ("AddTagsToResource", {"ResourceName": _A + "og:demo"}, "InvalidParameterValue"),
    ("AddTagsToResource", {"ResourceName": "arn:aws:rds:us-east-1:210987654321:cluster:demo"},
     "DBClusterNotFoundFault"),
])
async def test_foreign_arns_are_refused(env: Env, op: str, params: dict[str, str], code: str) -> None:
    ctx = make_ctx(FakeAuthorizer(), op, params)
    with pytest.raises(AwsError) as info:
        ACTIONS[op].resolve(ctx, env.service, params)
    assert info.value.code == code
    with pytest.raises(AwsError) as handled:  # the handler refuses it the same way
        await env.call(op, **params, Tags=[]) if op == "AddTagsToResource" else await env.call(op, **params)
    assert handled.value.code == code


async def test_manage_master_user_password_key(env: Env) -> None:
    def keys(op: str, **params: object) -> dict[str, object]:
        return env.service.authz_keys(make_ctx(FakeAuthorizer(), op), op, dict(params))

    # Absent means false, so {"Bool": {"rds:ManageMasterUserPassword": false}} denies unmanaged creates.
    assert keys("CreateDBCluster", MasterUserPassword="x")["rds:ManageMasterUserPassword"] is False
    assert keys("CreateDBCluster", ManageMasterUserPassword=True)["rds:ManageMasterUserPassword"] is True
    assert keys("CreateDBInstance")["rds:ManageMasterUserPassword"] is False
    await env.cluster(Tags=[{"Key": "env", "Value": "prod"}])
    modify = keys("ModifyDBCluster", DBClusterIdentifier="c1")
    assert modify["rds:ManageMasterUserPassword"] is False
    # aws:ResourceTag/* of ModifyDBCluster's resources (the cluster, a parameter group) come from the
    # pipeline, per resource (RdsService.resource_tags)
    assert modify["rds:cluster-tag/env"] == "prod" and "aws:ResourceTag/env" not in modify
    assert keys("DescribeDBEngineVersions") == {}
    create = keys("CreateDBInstance", DBClusterIdentifier="c1", Tags=[{"Key": "a", "Value": "b"}])
    assert create["rds:cluster-tag/env"] == "prod" and "aws:ResourceTag/env" not in create
    assert create["rds:req-tag/a"] == "b"
    await env.instance(Tags=[{"Key": "tier", "Value": "web"}])
    reboot = keys("RebootDBInstance", DBInstanceIdentifier="i1")
    assert reboot["rds:db-tag/tier"] == "web" and reboot["rds:DatabaseClass"] == "db.r6g.large"
    tagged = keys("AddTagsToResource", ResourceName="arn:aws:rds:us-east-1:123456789012:cluster:c1")
    assert tagged["rds:cluster-tag/env"] == "prod"


async def test_tags_by_arn(env: Env) -> None:
    await env.cluster()
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:c1"
    await env.call("AddTagsToResource", ResourceName=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    await env.call("RemoveTagsFromResource", ResourceName=arn, TagKeys=["a"])
    assert (await env.call("ListTagsForResource", ResourceName=arn))["TagList"] == [{"Key": "b", "Value": "2"}]
    assert env.service.resource_tags("123456789012", arn) == {"b": "2"}
    err = await env.fails("ListTagsForResource", ResourceName="arn:aws:rds:us-east-1:123456789012:db:nope")
    assert (err.code, err.message) == ("DBInstanceNotFound", "DBInstance nope not found.")
    err = await env.fails("ListTagsForResource", ResourceName="arn:aws:rds:us-east-1:123456789012:cluster:nope")
    assert err.code == "DBClusterNotFoundFault"
    err = await env.fails("AddTagsToResource", ResourceName="not-an-arn", Tags=[{"Key": "a", "Value": "1"}])
    assert err.code == "InvalidParameterValue"
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d",
                   Tags=[{"Key": "x", "Value": "y"}])
    pg = "arn:aws:rds:us-east-1:123456789012:cluster-pg:g"
    assert (await env.call("ListTagsForResource", ResourceName=pg))["TagList"] == [{"Key": "x", "Value": "y"}]


async def test_engine_versions_follow_the_runtime(env: Env) -> None:
    out = await env.call("DescribeDBEngineVersions", Engine="aurora-postgresql")
    versions = out["DBEngineVersions"]
    assert {v["MajorEngineVersion"] for v in versions} == {"15", "16"}
    v154 = next(v for v in versions if v["EngineVersion"] == "15.4")
    assert v154["DBParameterGroupFamily"] == "aurora-postgresql15"
    assert "15.6" in [t["EngineVersion"] for t in v154["ValidUpgradeTarget"]]
    assert (await env.call("DescribeDBEngineVersions", Engine="mysql"))["DBEngineVersions"] == []
    only16 = await env.call("DescribeDBEngineVersions", DBParameterGroupFamily="aurora-postgresql16")
    assert {v["MajorEngineVersion"] for v in only16["DBEngineVersions"]} == {"16"}
    default = await env.call("DescribeDBEngineVersions", DefaultOnly=True)
    # AWS's default (a 17 minor) is not served by this runtime: the newest version served is the default
    assert [v["EngineVersion"] for v in default["DBEngineVersions"]] == [MINORS[16][-1]]
    created = await env.call("CreateDBCluster", DBClusterIdentifier="d", Engine="aurora-postgresql",
                             MasterUsername="master", MasterUserPassword="Secret-pass1")
    assert created["DBCluster"]["EngineVersion"] == MINORS[16][-1]
    await env.service.drain()


async def test_clusters_exist_guard(env: Env) -> None:
    check = env.service.slr_deletion_check("123456789012")
    assert check("rds.amazonaws.com") is None
    await env.cluster()
    assert env.service.clusters_exist("123456789012")
    assert check("rds.amazonaws.com")
