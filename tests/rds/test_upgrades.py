"""Engine version upgrades in the control plane (fake runtime): AWS's refusals, the statuses, the
pending maintenance action and its opt-ins, the parameter group a major upgrade takes with it, and
DescribeDBEngineVersions / DescribeOrderableDBInstanceOptions as botocore's model reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auroral.rds.engine_versions import MINORS, is_upgrade_target
from auroral.rds.upgrades import next_window_start

from .conftest import Env


async def _ready(env: Env, ident: str = "c1", **extra: object) -> dict[str, object]:
    await env.cluster(ident, **extra)
    await env.instance(f"{ident}-w", ident)
    return (await env.call("DescribeDBClusters", DBClusterIdentifier=ident))["DBClusters"][0]


@pytest.mark.parametrize(("params", "message"), [
    ({"EngineVersion": "16.3"}, "Cannot upgrade aurora-postgresql from 16.4 to 16.3"),
    ({"EngineVersion": "16.99"}, "Cannot find version 16.99 for aurora-postgresql"),
    ({"EngineVersion": "15.10"}, "Cannot upgrade aurora-postgresql from 16.4 to 15.10"),
])
async def test_refused_versions(env: Env, params: dict[str, object], message: str) -> None:
    await _ready(env)
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", ApplyImmediately=True, **params)
    assert (err.code, err.message) == ("InvalidParameterCombination", message)


async def test_major_upgrade_needs_the_flag_and_a_group_of_the_new_family(env: Env) -> None:
    env.runtime.majors = [15, 16]
    await env.cluster("c1", EngineVersion="15.4")
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.4", ApplyImmediately=True)
    assert (err.code, err.message) == (
        "InvalidParameterCombination",
        "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.")
    # 15.4 (2023) may go to 16.1 and later, but 16.x released before it is no target
    assert is_upgrade_target("15.4", "16.1") and not is_upgrade_target("15.13", "16.8")
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g15",
                   DBParameterGroupFamily="aurora-postgresql15", Description="d")
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g16",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", DBClusterParameterGroupName="g15",
                   ApplyImmediately=True)
    await env.service.drain()
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.4",
                          AllowMajorVersionUpgrade=True, ApplyImmediately=True)
    assert err.code == "InvalidParameterCombination" and "g15 is custom" in err.message
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.4",
                          AllowMajorVersionUpgrade=True, DBClusterParameterGroupName="g15", ApplyImmediately=True)
    assert err.code == "InvalidParameterCombination" and "aurora-postgresql16" in err.message
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.4",
                         AllowMajorVersionUpgrade=True, DBClusterParameterGroupName="g16", ApplyImmediately=True)
    assert out["DBCluster"]["Status"] == "upgrading" and out["DBCluster"]["EngineVersion"] == "15.4"
    await env.service.drain()
    after = (await env.call("DescribeDBClusters", DBClusterIdentifier="c1"))["DBClusters"][0]
    assert (after["Status"], after["EngineVersion"], after["DBClusterParameterGroup"]) == ("available", "16.4", "g16")


async def test_immediate_minor_upgrade(env: Env) -> None:
    await _ready(env)
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.6", ApplyImmediately=True)
    assert out["DBCluster"]["Status"] == "upgrading"
    await env.service.drain()
    cluster = (await env.call("DescribeDBClusters", DBClusterIdentifier="c1"))["DBClusters"][0]
    assert (cluster["Status"], cluster["EngineVersion"]) == ("available", "16.6")
    instance = (await env.call("DescribeDBInstances", DBInstanceIdentifier="c1-w"))["DBInstances"][0]
    assert (instance["DBInstanceStatus"], instance["EngineVersion"]) == ("available", "16.6")
    assert ("upgrade_cluster", cluster["DbClusterResourceId"]) in env.runtime.calls


async def test_pending_minor_upgrade_and_its_opt_ins(env: Env) -> None:
    cluster = await _ready(env)
    arn = cluster["DBClusterArn"]
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.6")
    assert out["DBCluster"]["Status"] == "available"
    assert out["DBCluster"]["PendingModifiedValues"] == {"EngineVersion": "16.6"}
    pending = (await env.call("DescribePendingMaintenanceActions"))["PendingMaintenanceActions"]
    assert [(p["ResourceIdentifier"], [d["Action"] for d in p["PendingMaintenanceActionDetails"]])
            for p in pending] == [(arn, ["db-upgrade"])]
    assert (await env.call("DescribePendingMaintenanceActions", Filters=[
        {"Name": "db-cluster-id", "Values": ["other"]}]))["PendingMaintenanceActions"] == []
    err = await env.fails("ApplyPendingMaintenanceAction", ResourceIdentifier=arn, ApplyAction="system-update",
                          OptInType="immediate")
    assert err.code == "ResourceNotFoundFault"
    err = await env.fails("ApplyPendingMaintenanceAction", ResourceIdentifier=arn, ApplyAction="db-upgrade",
                          OptInType="soon")
    assert err.code == "InvalidParameterValue"
    later = await env.call("ApplyPendingMaintenanceAction", ResourceIdentifier=arn, ApplyAction="db-upgrade",
                           OptInType="next-maintenance")
    detail = later["ResourcePendingMaintenanceActions"]["PendingMaintenanceActionDetails"][0]
    assert detail["OptInStatus"] == "next-maintenance" and detail["CurrentApplyDate"].weekday() == 6
    undone = await env.call("ApplyPendingMaintenanceAction", ResourceIdentifier=arn, ApplyAction="db-upgrade",
                            OptInType="undo-opt-in")
    assert "OptInStatus" not in undone["ResourcePendingMaintenanceActions"]["PendingMaintenanceActionDetails"][0]
    await env.call("ApplyPendingMaintenanceAction", ResourceIdentifier=arn, ApplyAction="db-upgrade",
                   OptInType="immediate")
    await env.service.drain()
    cluster = (await env.call("DescribeDBClusters", DBClusterIdentifier="c1"))["DBClusters"][0]
    assert (cluster["Status"], cluster["EngineVersion"]) == ("available", "16.6")
    assert "EngineVersion" not in cluster.get("PendingModifiedValues", {})
    assert (await env.call("DescribePendingMaintenanceActions"))["PendingMaintenanceActions"] == []


async def test_a_failed_upgrade_leaves_the_old_version(env: Env) -> None:
    await _ready(env)
    env.runtime.fail["upgrade_cluster"] = "pg_upgrade failed"
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.6", ApplyImmediately=True)
    await env.service.drain()
    cluster = (await env.call("DescribeDBClusters", DBClusterIdentifier="c1"))["DBClusters"][0]
    assert (cluster["Status"], cluster["EngineVersion"]) == ("available", "16.4")


async def test_engine_versions_and_orderable_options(env: Env) -> None:
    out = await env.call("DescribeDBEngineVersions", Engine="aurora-postgresql", EngineVersion="15.4")
    [v154] = out["DBEngineVersions"]
    targets = {t["EngineVersion"]: t["IsMajorVersionUpgrade"] for t in v154["ValidUpgradeTarget"]}
    assert targets["15.6"] is False and targets["16.1"] is True and "15.4" not in targets
    assert set(targets) == {v for m in (15, 16) for v in MINORS[m] if is_upgrade_target("15.4", v)}
    assert {"Lambda", "s3Import", "s3Export", "Bedrock"} <= set(v154["SupportedFeatureNames"])
    assert v154["SupportsLimitlessDatabase"] is False and v154["DBParameterGroupFamily"] == "aurora-postgresql15"
    page = await env.call("DescribeOrderableDBInstanceOptions", Engine="aurora-postgresql", EngineVersion="16.4",
                          MaxRecords=20)
    options = page["OrderableDBInstanceOptions"]
    assert len(options) == 20 and page["Marker"]
    first = options[0]
    assert (first["Engine"], first["EngineVersion"], first["StorageType"], first["Vpc"]) == (
        "aurora-postgresql", "16.4", "aurora", True)
    assert [z["Name"] for z in first["AvailabilityZones"]] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert first["SupportsIAMDatabaseAuthentication"] is True and first["SupportsStorageEncryption"] is True
    rest = await env.call("DescribeOrderableDBInstanceOptions", Engine="aurora-postgresql", EngineVersion="16.4",
                          Marker=page["Marker"])
    classes = [o["DBInstanceClass"] for o in options + rest["OrderableDBInstanceOptions"]]
    assert len(classes) == len(set(classes)) and "db.r6g.large" in classes and "Marker" not in rest
    one = await env.call("DescribeOrderableDBInstanceOptions", Engine="aurora-postgresql",
                         DBInstanceClass="db.serverless", Vpc=True)
    assert {o["EngineVersion"] for o in one["OrderableDBInstanceOptions"]} == set(MINORS[15] + MINORS[16])
    assert (await env.call("DescribeOrderableDBInstanceOptions", Engine="mysql"))["OrderableDBInstanceOptions"] == []


def test_next_window_start() -> None:
    now = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # a Sunday, after 05:00
    assert next_window_start(now) == datetime(2026, 12, 13, 5, 0, tzinfo=UTC)
    assert next_window_start(datetime(2026, 12, 6, 4, 0, tzinfo=UTC)) == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
