"""DB cluster operations: validation messages, the state machine driven by runtime events,
the service-linked role, Describe filters and paging."""

from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD, Env


async def test_create_returns_creating_then_available_when_the_runtime_is_done(env: Env) -> None:
    created = await env.cluster("Prod-DB", drain=False, DatabaseName="app", Port=5433, DeletionProtection=True,
                                VpcSecurityGroupIds=["sg-1"], Tags=[{"Key": "team", "Value": "a"}])
    assert created["Status"] == "creating"
    assert created["DBClusterIdentifier"] == "prod-db"  # stored lower-cased
    assert created["DBClusterArn"] == "arn:aws:rds:us-east-1:123456789012:cluster:prod-db"
    assert re.fullmatch(r"cluster-[A-Z0-9]{26}", created["DbClusterResourceId"])
    assert created["Port"] == 5433 and created["Endpoint"].startswith("prod-db.cluster-")  # names from creation on
    assert created["DBClusterParameterGroup"] == "default.aurora-postgresql16"
    assert created["EngineVersion"] == "16.4" and created["EngineMode"] == "provisioned"
    assert created["VpcSecurityGroups"] == [{"VpcSecurityGroupId": "sg-1", "Status": "active"}]
    assert created["TagList"] == [{"Key": "team", "Value": "a"}]
    assert created["ClusterCreateTime"].tzinfo is not None
    assert env.runtime.calls == []  # nothing ran yet: the API returned first
    await env.service.drain()
    described = await env.describe_cluster("prod-db")
    assert described["Status"] == "available"
    server = env.runtime.servers[created["DbClusterResourceId"]]
    assert server.password == PASSWORD and server.running
    assert server.parameters["rds.force_ssl"] == "1" and server.parameters["password_encryption"] == "scram-sha-256"
    assert "max_connections" not in server.parameters  # formulas are AWS's, never a runtime's


async def test_create_failure_is_reported_with_failed(env: Env) -> None:
    env.runtime.fail["create_cluster"] = "initdb exploded"
    await env.cluster()
    cluster = env.service._cluster("123456789012", "c1")
    assert cluster.status == "failed" and cluster.status_reason == "initdb exploded"
    assert (await env.describe_cluster())["Status"] == "failed"


@pytest.mark.parametrize("ident", ["1abc", "a--b", "ab-", "a_b", "a" * 64, ""])
async def test_cluster_identifier_rules(env: Env, ident: str) -> None:
    err = await env.fails("CreateDBCluster", DBClusterIdentifier=ident, Engine="aurora-postgresql",
                          MasterUsername="master", MasterUserPassword=PASSWORD)
    assert err.code == "InvalidParameterValue"
    if ident:
        assert err.message == (
            "The parameter DBClusterIdentifier is not a valid identifier. Identifiers must begin with a letter; "
            "must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain "
            "two consecutive hyphens.")


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"MasterUsername": None}, "InvalidParameterValue", "The parameter MasterUsername must be provided and must not be blank."),
    ({"MasterUserPassword": None}, "InvalidParameterValue",
     "The parameter MasterUserPassword must be provided and must not be blank."),
    ({"MasterUsername": "postgres"}, "InvalidParameterValue",
     "MasterUsername postgres cannot be used as it is a reserved word used by the engine"),
    ({"MasterUsername": "rdsadmin"}, "InvalidParameterValue",
     "MasterUsername rdsadmin cannot be used as it is a reserved word used by the engine"),
    ({"MasterUserPassword": "short"}, "InvalidParameterValue",
     "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters."),
    ({"MasterUserPassword": "has/slash1"}, "InvalidParameterValue",
     "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
     "'/', '@', '\"', ' ' may be used."),
    ({"MasterUserPassword": "has space1"}, "InvalidParameterValue", None),
    ({"Engine": "aurora-mysql"}, "InvalidParameterValue", "Invalid DB engine"),
    ({"EngineVersion": "9.6"}, "InvalidParameterCombination", "Cannot find version 9.6 for aurora-postgresql"),
    ({"EngineVersion": "17.4"}, "InvalidParameterCombination", "Cannot find version 17.4 for aurora-postgresql"),
    ({"DBClusterParameterGroupName": "nope"}, "DBClusterParameterGroupNotFound",
     "DBClusterParameterGroup not found: nope"),
    ({"ManageMasterUserPassword": True, "MasterUserPassword": None}, "InvalidParameterValue", None),
])
async def test_create_validation(env: Env, params: dict[str, object], code: str, message: str | None) -> None:
    base = {"DBClusterIdentifier": "c1", "Engine": "aurora-postgresql", "MasterUsername": "master",
            "MasterUserPassword": PASSWORD}
    merged = {k: v for k, v in {**base, **params}.items() if v is not None}
    err = await env.fails("CreateDBCluster", **merged)
    assert err.code == code
    if message:
        assert err.message == message
    assert env.service._clusters(None) == []


async def test_duplicate_and_not_found(env: Env) -> None:
    await env.cluster()
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="C1", Engine="aurora-postgresql",
                          MasterUsername="master", MasterUserPassword=PASSWORD)
    assert (err.code, err.status, err.message) == ("DBClusterAlreadyExistsFault", 400, "DB Cluster already exists")
    err = await env.fails("DescribeDBClusters", DBClusterIdentifier="nope")
    assert (err.code, err.status, err.message) == ("DBClusterNotFoundFault", 404, "DBCluster nope not found.")


async def test_describe_filters_and_paging(env: Env) -> None:
    for n in range(25):
        await env.cluster(f"c{n:02d}", drain=False)
    await env.service.drain()
    page1 = await env.call("DescribeDBClusters", MaxRecords=20)
    assert len(page1["DBClusters"]) == 20 and page1["Marker"]
    page2 = await env.call("DescribeDBClusters", MaxRecords=20, Marker=page1["Marker"])
    ids = [c["DBClusterIdentifier"] for c in page1["DBClusters"] + page2["DBClusters"]]
    assert ids == [f"c{n:02d}" for n in range(25)] and "Marker" not in page2
    err = await env.fails("DescribeDBClusters", MaxRecords=5)
    assert err.message == "Invalid value 5 for MaxRecords. Must be between 20 and 100"
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:c03"
    out = await env.call("DescribeDBClusters", Filters=[{"Name": "db-cluster-id", "Values": ["c01", arn]}])
    assert [c["DBClusterIdentifier"] for c in out["DBClusters"]] == ["c01", "c03"]
    out = await env.call("DescribeDBClusters", Filters=[{"Name": "engine", "Values": ["aurora-mysql"]}])
    assert out["DBClusters"] == []


async def test_service_linked_role_created_once(env: Env) -> None:
    await env.cluster()
    assert env.directory.roles == {"rds.amazonaws.com"}
    slr = [c for c in env.authorizer.checks if c[0] == "iam:CreateServiceLinkedRole"]
    assert slr == [("iam:CreateServiceLinkedRole",
                    ["arn:aws:iam::123456789012:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"],
                    {"iam:AWSServiceName": "rds.amazonaws.com"})]
    await env.cluster("c2")
    assert len([c for c in env.authorizer.checks if c[0] == "iam:CreateServiceLinkedRole"]) == 1


async def test_service_linked_role_denied_creates_nothing(env: Env) -> None:
    env.authorizer.deny.add("iam:CreateServiceLinkedRole")
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="c1", Engine="aurora-postgresql",
                          MasterUsername="master", MasterUserPassword=PASSWORD)
    assert err.code == "InvalidParameterValue"
    assert err.message == ("Unable to create the resource. Verify that you have permission to create service "
                           "linked role. Otherwise wait and try again later.")
    await env.service.drain()
    assert env.service._clusters(None) == [] and env.runtime.calls == [] and not env.directory.roles
    assert not env.service.clusters_exist("123456789012")


async def test_reset_master_password(env: Env) -> None:
    await env.cluster()
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", MasterUserPassword="New-pass-2",
                         ApplyImmediately=True)
    assert out["DBCluster"]["Status"] == "resetting-master-credentials"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", DeletionProtection=True)
    assert err.code == "InvalidDBClusterStateFault"
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert cluster["Status"] == "available"
    assert env.runtime.servers[cluster["DbClusterResourceId"]].password == "New-pass-2"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", MasterUserPassword="x")
    assert err.code == "InvalidParameterValue"


async def test_modify_settings_and_rename(env: Env) -> None:
    await env.cluster()
    await env.instance()
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", NewDBClusterIdentifier="c2",
                         EnableIAMDatabaseAuthentication=True, VpcSecurityGroupIds=["sg-9"], Port=6000)
    cluster = out["DBCluster"]
    assert cluster["DBClusterIdentifier"] == "c2" and cluster["IAMDatabaseAuthenticationEnabled"] is True
    assert cluster["VpcSecurityGroups"] == [{"VpcSecurityGroupId": "sg-9", "Status": "active"}]
    assert (await env.fails("DescribeDBClusters", DBClusterIdentifier="c1")).code == "DBClusterNotFoundFault"
    assert (await env.describe_instance())["DBClusterIdentifier"] == "c2"
    assert env.service._cluster("123456789012", "c2").port == 6000


async def test_delete_rules(env: Env) -> None:
    await env.cluster(DeletionProtection=True)
    err = await env.fails("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    assert (err.code, err.message) == (
        "InvalidParameterCombination",
        "Cannot delete protected Cluster, please disable deletion protection and try again.")
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", DeletionProtection=False)
    err = await env.fails("DeleteDBCluster", DBClusterIdentifier="c1")
    assert (err.code, err.message) == (
        "InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
    await env.instance()
    err = await env.fails("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    assert (err.code, err.message) == (
        "InvalidDBClusterStateFault", "Cluster cannot be deleted, it still contains DB instances in non-deleting state.")
    await env.call("DeleteDBInstance", DBInstanceIdentifier="i1")
    out = await env.call("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    assert out["DBCluster"]["Status"] == "deleting"
    rid = out["DBCluster"]["DbClusterResourceId"]
    await env.service.drain()
    assert env.service._clusters(None) == [] and rid not in env.runtime.servers
    assert not env.service.clusters_exist("123456789012")


async def test_stop_and_start(env: Env) -> None:
    await env.cluster()
    await env.instance()
    err = await env.fails("StartDBCluster", DBClusterIdentifier="c1")
    assert err.message == "DbCluster c1 is in available state but expected it to be one of stopped."
    out = await env.call("StopDBCluster", DBClusterIdentifier="c1")
    assert out["DBCluster"]["Status"] == "stopping"
    assert (await env.describe_instance())["DBInstanceStatus"] == "stopping"
    await env.service.drain()
    cluster = await env.describe_cluster()
    # the names stay (as AWS keeps them while stopped); nothing listens
    assert cluster["Status"] == "stopped" and cluster["Endpoint"].startswith("c1.cluster-")
    assert env.runtime.endpoints == {}
    assert (await env.describe_instance())["DBInstanceStatus"] == "stopped"
    assert not env.runtime.servers[cluster["DbClusterResourceId"]].running
    err = await env.fails("StopDBCluster", DBClusterIdentifier="c1")
    assert (err.code, err.message) == (
        "InvalidDBClusterStateFault", "DbCluster c1 is in stopped state but expected it to be one of available.")
    assert (await env.call("StartDBCluster", DBClusterIdentifier="c1"))["DBCluster"]["Status"] == "starting"
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert cluster["Status"] == "available"
    assert re.fullmatch(r"c1\.cluster-[a-z][a-z0-9]{11}\.us-east-1\.rds\.amazonaws\.com", cluster["Endpoint"])
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"


async def test_start_failure_marks_failed(env: Env) -> None:
    await env.cluster()
    await env.call("StopDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    env.runtime.fail["start_cluster"] = "postmaster died"
    await env.call("StartDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    cluster = env.service._cluster("123456789012", "c1")
    assert cluster.status == "failed" and "postmaster died" in (cluster.status_reason or "")


async def test_manage_master_user_password_needs_secrets_manager(env: Env) -> None:
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="c1", Engine="aurora-postgresql",
                          MasterUsername="master", ManageMasterUserPassword=True)
    assert err.code == "InvalidParameterValue" and "not supported" in err.message
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="c1", Engine="aurora-postgresql",
                          MasterUsername="master", ManageMasterUserPassword=True, MasterUserPassword=PASSWORD)
    assert err.code == "InvalidParameterValue"


async def test_runtime_events_move_status(env: Env) -> None:
    cluster = await env.cluster()
    await env.instance()
    assert env.runtime.listener is not None
    env.runtime.listener(cluster["DbClusterResourceId"], "failed", "server crashed")
    assert (await env.describe_cluster())["Status"] == "failed"
    assert (await env.describe_instance())["DBInstanceStatus"] == "failed"
    env.runtime.listener(cluster["DbClusterResourceId"], "available", None)
    assert (await env.describe_cluster())["Status"] == "available"
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"
    await env.call("StopDBCluster", DBClusterIdentifier="c1")
    env.runtime.listener(cluster["DbClusterResourceId"], "available", None)  # ours to decide now
    assert (await env.describe_cluster())["Status"] == "stopping"
    await env.service.drain()
