"""DB cluster parameter groups: defaults, engine defaults, modify/reset with AWS's apply
semantics reaching the runtime, and the delete rules."""

from __future__ import annotations

from typing import Any

from .conftest import Env


def by_name(params: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["ParameterName"]: p for p in params}


async def test_default_groups_follow_the_runtime_majors(env: Env) -> None:
    out = await env.call("DescribeDBClusterParameterGroups")
    names = [g["DBClusterParameterGroupName"] for g in out["DBClusterParameterGroups"]]
    assert names == ["default.aurora-postgresql15", "default.aurora-postgresql16"]
    group = out["DBClusterParameterGroups"][0]
    assert group["DBClusterParameterGroupArn"] == (
        "arn:aws:rds:us-east-1:123456789012:cluster-pg:default.aurora-postgresql15")


async def test_engine_defaults(env: Env) -> None:
    out = await env.call("DescribeEngineDefaultClusterParameters", DBParameterGroupFamily="aurora-postgresql16")
    params = by_name(out["EngineDefaults"]["Parameters"])
    assert out["EngineDefaults"]["DBParameterGroupFamily"] == "aurora-postgresql16"
    force = params["rds.force_ssl"]
    assert (force["ParameterValue"], force["ApplyType"], force["DataType"], force["AllowedValues"],
            force["IsModifiable"]) == ("1", "dynamic", "boolean", "0,1", True)
    assert params["rds.restrict_password_commands"]["ParameterValue"] == "0"
    assert params["rds.restrict_password_commands"]["ApplyType"] == "static"
    assert params["password_encryption"]["ParameterValue"] == "scram-sha-256"
    assert params["ssl"]["IsModifiable"] is False
    older = await env.call("DescribeEngineDefaultClusterParameters", DBParameterGroupFamily="aurora-postgresql14")
    assert by_name(older["EngineDefaults"]["Parameters"])["rds.force_ssl"]["ParameterValue"] == "0"


async def test_create_modify_and_apply(env: Env) -> None:
    out = await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="Strict",
                         DBParameterGroupFamily="aurora-postgresql16", Description="strict")
    assert out["DBClusterParameterGroup"]["DBClusterParameterGroupName"] == "strict"
    err = await env.fails("CreateDBClusterParameterGroup", DBClusterParameterGroupName="strict",
                          DBParameterGroupFamily="aurora-postgresql16", Description="again")
    assert (err.code, err.message) == ("DBParameterGroupAlreadyExists", "Parameter group strict already exists")
    err = await env.fails("CreateDBClusterParameterGroup", DBClusterParameterGroupName="x",
                          DBParameterGroupFamily="mysql8.0", Description="d")
    assert err.code == "InvalidParameterValue"

    cluster = await env.cluster(DBClusterParameterGroupName="strict")
    await env.instance()
    server = env.runtime.servers[cluster["DbClusterResourceId"]]
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="strict", Parameters=[
        {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert (err.code, err.message) == ("InvalidParameterCombination",
                                       "cannot use immediate apply method for static parameter")
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="strict", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "2", "ApplyMethod": "immediate"}])
    assert err.message == "Invalid parameter value: 2 for: rds.force_ssl allowed values are: 0,1"
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="strict", Parameters=[
        {"ParameterName": "ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    assert err.code == "InvalidParameterValue"

    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="strict", Parameters=[
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
        {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
    await env.service.drain()
    assert server.applied == [{"log_connections": "1"}]
    assert server.parameters["rds.restrict_password_commands"] == "0"
    members = (await env.describe_cluster())["DBClusterMembers"]
    assert members[0]["DBClusterParameterGroupStatus"] == "pending-reboot"

    params = by_name((await env.call("DescribeDBClusterParameters", DBClusterParameterGroupName="strict",
                                     Source="user"))["Parameters"])
    assert set(params) == {"log_connections", "rds.restrict_password_commands"}
    assert params["rds.restrict_password_commands"]["ApplyMethod"] == "pending-reboot"

    await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env.service.drain()
    assert server.parameters["rds.restrict_password_commands"] == "1"
    members = (await env.describe_cluster())["DBClusterMembers"]
    assert members[0]["DBClusterParameterGroupStatus"] == "in-sync"

    await env.call("ResetDBClusterParameterGroup", DBClusterParameterGroupName="strict", ResetAllParameters=True)
    await env.service.drain()
    assert server.applied[-1] == {"log_connections": "0"}
    assert (await env.describe_cluster())["DBClusterMembers"][0]["DBClusterParameterGroupStatus"] == "pending-reboot"


async def test_switching_a_clusters_group(env: Env) -> None:
    cluster = await env.cluster()
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="loud",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="loud", Parameters=[
        {"ParameterName": "log_disconnections", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="old",
                   DBParameterGroupFamily="aurora-postgresql15", Description="d")
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", DBClusterParameterGroupName="old")
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", DBClusterParameterGroupName="gone")
    assert err.code == "DBClusterParameterGroupNotFound"
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", DBClusterParameterGroupName="loud")
    assert out["DBCluster"]["DBClusterParameterGroup"] == "loud"
    await env.service.drain()
    assert env.runtime.servers[cluster["DbClusterResourceId"]].applied == [{"log_disconnections": "1"}]


async def test_delete_rules(env: Env) -> None:
    err = await env.fails("DeleteDBClusterParameterGroup", DBClusterParameterGroupName="default.aurora-postgresql16")
    assert (err.code, err.message) == ("InvalidDBParameterGroupState",
                                       "Default DBClusterParameterGroup cannot be deleted: default.aurora-postgresql16")
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="default.aurora-postgresql16",
                          Parameters=[{"ParameterName": "log_connections", "ParameterValue": "1",
                                       "ApplyMethod": "immediate"}])
    assert (err.code, err.message) == ("InvalidParameterValue", "Cannot modify a default parameter group.")
    err = await env.fails("DeleteDBClusterParameterGroup", DBClusterParameterGroupName="nope")
    assert (err.code, err.status, err.message) == ("DBParameterGroupNotFound", 404,
                                                   "DBClusterParameterGroup not found: nope")
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="used",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.cluster(DBClusterParameterGroupName="used")
    err = await env.fails("DeleteDBClusterParameterGroup", DBClusterParameterGroupName="used")
    assert err.code == "InvalidDBParameterGroupState"
    await env.call("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    await env.service.drain()
    await env.call("DeleteDBClusterParameterGroup", DBClusterParameterGroupName="used")
    err = await env.fails("DescribeDBClusterParameters", DBClusterParameterGroupName="used")
    assert err.code == "DBParameterGroupNotFound"


async def test_parameters_paging(env: Env) -> None:
    first = await env.call("DescribeDBClusterParameters", DBClusterParameterGroupName="default.aurora-postgresql15",
                           MaxRecords=20)
    assert "Marker" not in first or first["Parameters"]
    names = [p["ParameterName"] for p in first["Parameters"]]
    assert names == sorted(names) and "rds.force_ssl" in names


async def test_runtime_refuses_a_value_it_cannot_honour(env: Env) -> None:
    # LocalRuntime: rds.restrict_password_commands=1 where its server module could not be built
    env.runtime.refusals[("rds.restrict_password_commands", "1")] = "the module could not be built"
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="pw",
                   DBParameterGroupFamily="aurora-postgresql16", Description="pw")
    err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="pw", Parameters=[
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
        {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1",
         "ApplyMethod": "pending-reboot"}])
    assert (err.code, err.message) == ("InvalidParameterValue", "the module could not be built")
    params = (await env.call("DescribeDBClusterParameters", DBClusterParameterGroupName="pw",
                             Source="user"))["Parameters"]
    assert params == []  # nothing of the call was applied
    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="pw", Parameters=[
        {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "0", "ApplyMethod": "pending-reboot"}])


async def test_values_are_checked_against_allowed_values(env: Env) -> None:
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    described = by_name((await env.call("DescribeDBClusterParameters", DBClusterParameterGroupName="g"))["Parameters"])
    zones = described["timezone"]["AllowedValues"].split(",")
    assert "Europe/Paris" in zones and zones == sorted(zones)

    async def refused(name: str, value: str) -> str:
        err = await env.fails("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="g", Parameters=[
            {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "immediate"}])
        assert err.code == "InvalidParameterValue", (name, value)
        return err.message

    assert (await refused("timezone", "Mars/Olympus")).startswith(
        "Invalid parameter value: Mars/Olympus for: timezone allowed values are: Africa/")
    for value in ("europe/paris", "Europe/Paris ", "", "Europe/Paris,UTC"):
        await refused("timezone", value)
    for value in ("+5", "5 ", "1_000", "\u0665", "1e3", "9" * 30, "2147483648", "-1"):
        await refused("idle_in_transaction_session_timeout", value)
    assert await refused("log_min_duration_statement", "-2") == (
        "Invalid parameter value: -2 for: log_min_duration_statement allowed values are: -1-2147483647")
    await refused("client_encoding", "utf8")
    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="g", Parameters=[
        {"ParameterName": "timezone", "ParameterValue": "Europe/Paris", "ApplyMethod": "immediate"},
        {"ParameterName": "log_min_duration_statement", "ParameterValue": "-1", "ApplyMethod": "immediate"}])
    user = by_name((await env.call("DescribeDBClusterParameters", DBClusterParameterGroupName="g",
                                   Source="user"))["Parameters"])
    assert {k: v["ParameterValue"] for k, v in user.items()} == {
        "timezone": "Europe/Paris", "log_min_duration_statement": "-1"}


async def _store_legacy_value(env: Env, group: str, name: str, value: str) -> None:
    """A value stored before the checks existed (written to the store as that version did)."""
    stored = env.service._get_group("123456789012", group)
    assert stored is not None
    stored.values[name] = (value, "immediate")
    env.service._save_group(stored)


async def test_stored_invalid_value_and_incompatible_parameters(env: Env) -> None:
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="old",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await _store_legacy_value(env, "old", "timezone", "Mars/Olympus")
    # no new cluster takes up a group PostgreSQL would refuse
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="c2", Engine="aurora-postgresql",
                          EngineVersion="16.4", MasterUsername="master", MasterUserPassword="Secret-pass1",
                          DBClusterParameterGroupName="old")
    assert err.code == "InvalidParameterValue" and "Mars/Olympus for: timezone" in err.message

    # a cluster that used it already: PostgreSQL refuses at the reboot -> incompatible-parameters
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="g",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    cluster = await env.cluster(DBClusterParameterGroupName="g")
    await env.instance()
    await _store_legacy_value(env, "g", "timezone", "Mars/Olympus")
    env.runtime.incompatible["reboot_cluster"] = 'invalid value for parameter "TimeZone": "Mars/Olympus"'
    await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env.service.drain()
    assert (await env.describe_cluster())["Status"] == "incompatible-parameters"
    assert (await env.describe_instance())["DBInstanceStatus"] == "incompatible-parameters"
    assert env.runtime.endpoints == {}
    for op, params in (("StartDBCluster", {"DBClusterIdentifier": "c1"}),
                       ("StopDBCluster", {"DBClusterIdentifier": "c1"}),
                       ("ModifyDBCluster", {"DBClusterIdentifier": "c1", "MasterUserPassword": "Other-pass-12"})):
        assert (await env.fails(op, **params)).code == "InvalidDBClusterStateFault"

    # a restart of auroral tries again (still refused: the group is unchanged)
    env.runtime.incompatible["start_cluster"] = 'invalid value for parameter "TimeZone": "Mars/Olympus"'
    env2 = env.reopen()
    await env2.service.recover()
    assert (await env2.describe_cluster())["Status"] == "incompatible-parameters"

    # reset the group, reboot: available again, endpoint open
    del env.runtime.incompatible["start_cluster"], env.runtime.incompatible["reboot_cluster"]
    await env2.call("ResetDBClusterParameterGroup", DBClusterParameterGroupName="g", Parameters=[
        {"ParameterName": "timezone", "ApplyMethod": "immediate"}])
    await env2.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env2.service.drain()
    assert (await env2.describe_cluster())["Status"] == "available"
    assert (await env2.describe_instance())["DBInstanceStatus"] == "available"
    server = env.runtime.servers[cluster["DbClusterResourceId"]]
    assert server.running and "timezone" in server.parameters and server.parameters["timezone"] == "UTC"


async def test_incompatible_at_create_and_another_group(env: Env) -> None:
    env.runtime.incompatible["create_cluster"] = "too many server processes configured"
    await env.cluster(drain=False)
    await env.instance()
    assert (await env.describe_cluster())["Status"] == "incompatible-parameters"
    assert (await env.describe_instance())["DBInstanceStatus"] == "incompatible-parameters"
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="fixed",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", DBClusterParameterGroupName="fixed")
    await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env.service.drain()
    assert (await env.describe_cluster())["Status"] == "available"
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"


async def test_failed_start_from_before_is_retried_at_recovery(env: Env) -> None:
    await env.cluster()
    await env.instance()
    await env.call("StopDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    env.runtime.fail["start_cluster"] = "postmaster exited with code 1"
    await env.call("StartDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    assert (await env.describe_cluster())["Status"] == "failed"  # not a parameter problem: failed
    del env.runtime.fail["start_cluster"]
    env2 = env.reopen()
    await env2.service.recover()
    assert (await env2.describe_cluster())["Status"] == "available"
    assert (await env2.describe_instance())["DBInstanceStatus"] == "available"


async def test_reboot_queued_behind_a_failing_retry_still_runs(env: Env) -> None:
    cluster = await env.cluster()
    await env.instance()
    env.runtime.incompatible["reboot_cluster"] = "too many server processes configured"
    await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env.service.drain()
    assert (await env.describe_instance())["DBInstanceStatus"] == "incompatible-parameters"
    # a retry (as at a restart of auroral) still fails; the user's reboot, queued behind it, runs after it
    del env.runtime.incompatible["reboot_cluster"]
    env.runtime.incompatible["start_cluster"] = "too many server processes configured"
    env.service._spawn_start(cluster["DbClusterResourceId"], "incompatible-parameters")
    await env.call("RebootDBInstance", DBInstanceIdentifier="i1")
    await env.service.drain()
    assert (await env.describe_cluster())["Status"] == "available"
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"
