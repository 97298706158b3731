"""DB instances: endpoints from the runtime, writer/reader roles, validation, reboot, delete."""

from __future__ import annotations

import re

import pytest

from .conftest import Env


async def test_first_instance_is_the_writer_and_its_endpoint_is_the_clusters(env: Env) -> None:
    creating = await env.cluster(drain=False)
    # the cluster's names and port from creation on, as AWS answers CreateDBCluster
    ident = creating["Endpoint"].split(".")[1].removeprefix("cluster-")
    assert creating["Endpoint"] == f"c1.cluster-{ident}.us-east-1.rds.amazonaws.com"
    assert creating["ReaderEndpoint"] == f"c1.cluster-ro-{ident}.us-east-1.rds.amazonaws.com"
    assert creating["Port"] == 5432 and re.fullmatch(r"[a-z][a-z0-9]{11}", ident)
    created = await env.instance(drain=False, PubliclyAccessible=True)  # while the cluster is creating
    assert created["DBInstanceStatus"] == "creating" and "Endpoint" not in created
    assert re.fullmatch(r"db-[A-Z0-9]{26}", created["DbiResourceId"])
    assert created["DBInstanceArn"] == "arn:aws:rds:us-east-1:123456789012:db:i1"
    await env.service.drain()
    instance = await env.describe_instance()
    assert instance["DBInstanceStatus"] == "available" and instance["PubliclyAccessible"] is True
    _, port = env.runtime.endpoints[instance["DbiResourceId"]]
    assert instance["Endpoint"] == {"Address": f"i1.{ident}.us-east-1.rds.amazonaws.com", "Port": port,
                                    "HostedZoneId": "Z2R2ITUGPM61AM"}
    cluster = await env.describe_cluster()
    # the writer's port (this fake runtime gives each endpoint its own, as with AURORAL_ENDPOINT_HOST)
    assert (cluster["Endpoint"], cluster["Port"]) == (creating["Endpoint"], port)
    assert cluster["DBClusterMembers"] == [{"DBInstanceIdentifier": "i1", "IsClusterWriter": True,
                                            "DBClusterParameterGroupStatus": "in-sync", "PromotionTier": 1}]
    reader = await env.instance("i2")
    assert reader["PubliclyAccessible"] is False
    members = (await env.describe_cluster())["DBClusterMembers"]
    assert [(m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in members] == [("i1", True), ("i2", False)]


async def test_instance_of_a_failed_cluster_fails(env: Env) -> None:
    env.runtime.fail["create_cluster"] = "no binaries"
    await env.cluster(drain=False)
    await env.instance()
    assert (await env.describe_instance())["DBInstanceStatus"] == "failed"


@pytest.mark.parametrize(("params", "code", "fragment"), [
    ({"DBClusterIdentifier": None}, "InvalidParameterValue", "DBClusterIdentifier"),
    ({"DBClusterIdentifier": "nope"}, "DBClusterNotFoundFault", "DBCluster nope not found."),
    ({"Engine": "postgres"}, "InvalidParameterValue", "Invalid DB engine"),
    ({"DBInstanceClass": "db.t2.micro"}, "InvalidParameterCombination",
     "RDS does not support creating a DB instance with the following combination: DBInstanceClass=db.t2.micro"),
    ({"MasterUserPassword": "Secret-pass1"}, "InvalidParameterCombination",
     "The requested DB Instance will be a member of a DB Cluster. Set master user password for the DB Cluster."),
    ({"EngineVersion": "15.4"}, "InvalidParameterCombination", "does not match"),
    ({"DBInstanceIdentifier": "bad--id"}, "InvalidParameterValue", "is not a valid identifier"),
])
async def test_create_instance_validation(env: Env, params: dict[str, object], code: str, fragment: str) -> None:
    await env.cluster()
    base = {"DBInstanceIdentifier": "i1", "DBClusterIdentifier": "c1", "Engine": "aurora-postgresql",
            "DBInstanceClass": "db.r6g.large"}
    merged = {k: v for k, v in {**base, **params}.items() if v is not None}
    err = await env.fails("CreateDBInstance", **merged)
    assert err.code == code and fragment in err.message
    assert env.service._instances(None) == []


async def test_duplicate_and_not_found(env: Env) -> None:
    await env.cluster()
    await env.instance()
    err = await env.fails("CreateDBInstance", DBInstanceIdentifier="I1", DBClusterIdentifier="c1",
                          Engine="aurora-postgresql", DBInstanceClass="db.serverless")
    assert (err.code, err.message) == ("DBInstanceAlreadyExists", "DB instance already exists")
    err = await env.fails("DescribeDBInstances", DBInstanceIdentifier="nope")
    assert (err.code, err.status, err.message) == ("DBInstanceNotFound", 404, "DBInstance nope not found.")


async def test_describe_filters(env: Env) -> None:
    await env.cluster("a")
    await env.cluster("b")
    await env.instance("a1", "a")
    await env.instance("b1", "b")
    out = await env.call("DescribeDBInstances", Filters=[{"Name": "db-cluster-id", "Values": ["b"]}])
    assert [i["DBInstanceIdentifier"] for i in out["DBInstances"]] == ["b1"]
    out = await env.call("DescribeDBInstances", Filters=[{"Name": "db-instance-id", "Values": ["a1", "b1"]},
                                                         {"Name": "engine", "Values": ["aurora-postgresql"]}])
    assert len(out["DBInstances"]) == 2
    err = await env.fails("DescribeDBInstances", Filters=[{"Name": "colour", "Values": ["x"]}])
    assert err.code == "InvalidParameterValue"


async def test_modify_instance(env: Env) -> None:
    await env.cluster()
    await env.instance()
    out = await env.call("ModifyDBInstance", DBInstanceIdentifier="i1", DBInstanceClass="db.r7g.xlarge",
                         PubliclyAccessible=True, PromotionTier=3, ApplyImmediately=True)
    instance = out["DBInstance"]
    assert (instance["DBInstanceClass"], instance["PubliclyAccessible"], instance["PromotionTier"]) == (
        "db.r7g.xlarge", True, 3)
    err = await env.fails("ModifyDBInstance", DBInstanceIdentifier="i1", DBInstanceClass="db.m1.small")
    assert err.code == "InvalidParameterCombination"
    out = await env.call("ModifyDBInstance", DBInstanceIdentifier="i1", NewDBInstanceIdentifier="i9")
    assert out["DBInstance"]["DBInstanceIdentifier"] == "i9"
    assert (await env.fails("DescribeDBInstances", DBInstanceIdentifier="i1")).code == "DBInstanceNotFound"


async def test_a_rename_tells_the_runtime_and_the_instance_is_renaming_meanwhile(env: Env) -> None:
    await env.cluster()
    await env.instance()
    rid = (await env.describe_instance())["DbiResourceId"]
    out = await env.call("ModifyDBInstance", DBInstanceIdentifier="i1", NewDBInstanceIdentifier="I9",
                         ApplyImmediately=True)
    assert (out["DBInstance"]["DBInstanceIdentifier"], out["DBInstance"]["DBInstanceStatus"]) == ("i9", "renaming")
    err = await env.fails("ModifyDBInstance", DBInstanceIdentifier="i9", PromotionTier=2)
    assert err.code == "InvalidDBInstanceState"
    await env.service.drain()
    assert env.runtime.renamed == [(rid, "i9")]
    assert (await env.describe_instance("i9"))["DBInstanceStatus"] == "available"
    # the same name again is no rename: nothing to tell, nothing to wait for
    out = await env.call("ModifyDBInstance", DBInstanceIdentifier="i9", NewDBInstanceIdentifier="i9")
    assert out["DBInstance"]["DBInstanceStatus"] == "available" and env.runtime.renamed == [(rid, "i9")]
    # a runtime that cannot tell its servers leaves the rename done, the instance available
    env.runtime.fail["rename_instance"] = "the server is gone"
    await env.call("ModifyDBInstance", DBInstanceIdentifier="i9", NewDBInstanceIdentifier="i8")
    await env.service.drain()
    assert (await env.describe_instance("i8"))["DBInstanceStatus"] == "available"


async def test_reboot(env: Env) -> None:
    cluster = await env.cluster()
    await env.instance()
    out = await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    assert out["DBInstance"]["DBInstanceStatus"] == "rebooting"
    err = await env.fails("RebootDBInstance", DBInstanceIdentifier="i1")
    assert (err.code, err.message) == ("InvalidDBInstanceState", "Instance i1 is not in available state.")
    await env.service.drain()
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"
    assert env.runtime.servers[cluster["DbClusterResourceId"]].reboots == 1


async def test_deleting_the_writer_promotes_a_reader(env: Env) -> None:
    cluster = await env.cluster()
    await env.instance("w")
    await env.instance("r1", PromotionTier=5)
    await env.instance("r2", PromotionTier=0)
    out = await env.call("DeleteDBInstance", DBInstanceIdentifier="w", SkipFinalSnapshot=True)
    assert out["DBInstance"]["DBInstanceStatus"] == "deleting"
    err = await env.fails("DeleteDBInstance", DBInstanceIdentifier="w")
    assert err.code == "InvalidDBInstanceState"
    await env.service.drain()
    members = (await env.describe_cluster())["DBClusterMembers"]
    assert [(m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in members] == [("r2", True), ("r1", False)]
    r2 = await env.describe_instance("r2")
    assert env.runtime.writer[cluster["DbClusterResourceId"]] == r2["DbiResourceId"]
    assert (await env.describe_cluster())["Port"] == r2["Endpoint"]["Port"]
