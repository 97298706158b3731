"""Custom cluster endpoints on the provider (fake runtime, outputs through botocore's parser): the
states between a request and its background work, membership for the DNS side, what instance and
cluster deletion do to the lists, recovery, tags and authorization resources."""

from __future__ import annotations

import re

import pytest

from auroral.rds.actions import ACTIONS
from auroral.rds.model import Cluster

from .conftest import Env
from .fakes import FakeAuthorizer, make_ctx

_ARN = "arn:aws:rds:us-east-1:123456789012:"


async def _cluster_with(env: Env, *instances: str) -> None:
    await env.cluster()
    for name in instances:
        await env.instance(name)


def _cluster(env: Env, ident: str = "c1") -> Cluster:
    found = env.service._get_cluster("123456789012", ident)
    assert found is not None
    return found


def _dns(env: Env, name: str) -> str:
    (found,) = [n for n in env.service.custom_endpoint_dns_names(_cluster(env)) if n.startswith(name + ".")]
    return found


async def test_create_answers_creating_then_the_listener_is_told_and_it_is_available(env: Env) -> None:
    await _cluster_with(env, "i1", "i2")
    told: list[str] = []
    env.service.add_custom_endpoint_listener(lambda c: told.append(c.identifier))
    out = await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="C1", DBClusterEndpointIdentifier="Reports",
                         EndpointType="reader", Tags=[{"Key": "team", "Value": "bi"}])
    assert out["Status"] == "creating" and out["EndpointType"] == "CUSTOM" and out["CustomEndpointType"] == "READER"
    assert out["DBClusterEndpointIdentifier"] == "reports" and out["DBClusterIdentifier"] == "c1"
    assert out["DBClusterEndpointArn"] == _ARN + "cluster-endpoint:reports"
    assert re.fullmatch(r"cluster-endpoint-[A-Z0-9]{26}", out["DBClusterEndpointResourceIdentifier"])
    assert re.fullmatch(r"reports\.cluster-custom-[a-z][a-z0-9]{11}\.us-east-1\.rds\.amazonaws\.com", out["Endpoint"])
    assert out["StaticMembers"] == [] and out["ExcludedMembers"] == []
    # the operations that need it available are refused until the background work has run
    error = await env.fails("ModifyDBClusterEndpoint", DBClusterEndpointIdentifier="reports", StaticMembers=["i2"])
    assert error.code == "InvalidDBClusterEndpointStateFault"
    error = await env.fails("DeleteDBClusterEndpoint", DBClusterEndpointIdentifier="reports")
    assert error.code == "InvalidDBClusterEndpointStateFault"
    assert told == []
    await env.service.drain()
    assert told == ["c1"]
    (described,) = (await env.call("DescribeDBClusterEndpoints", DBClusterEndpointIdentifier="REPORTS"))[
        "DBClusterEndpoints"]
    assert described == {**out, "Status": "available"}
    assert (await env.describe_cluster())["CustomEndpoints"] == [out["Endpoint"]]

    modified = await env.call("ModifyDBClusterEndpoint", DBClusterEndpointIdentifier="reports",
                              StaticMembers=["I2", "i1", "i2"], EndpointType="ANY")
    assert modified["Status"] == "modifying" and modified["StaticMembers"] == ["i2", "i1"]
    assert modified["CustomEndpointType"] == "ANY"
    await env.service.drain()
    assert told == ["c1", "c1"]
    deleted = await env.call("DeleteDBClusterEndpoint", DBClusterEndpointIdentifier="reports")
    assert deleted["Status"] == "deleting"
    assert env.service.custom_endpoint_members(_cluster(env)) == {}  # its name stops resolving at once
    await env.service.drain()
    assert (await env.call("DescribeDBClusterEndpoints", DBClusterEndpointIdentifier="reports"))[
        "DBClusterEndpoints"] == []
    assert (await env.describe_cluster())["CustomEndpoints"] == []
    assert told == ["c1", "c1", "c1"]


async def test_members_for_the_dns_side(env: Env) -> None:
    await _cluster_with(env, "w1", "r1", "r2")
    for name, kind, extra in (("readers", "READER", {}), ("all", "ANY", {}),
                              ("not-r1", "READER", {"ExcludedMembers": ["r1"]}),
                              ("fixed", "READER", {"StaticMembers": ["w1", "r2"]}),
                              ("any-but-w1", "ANY", {"ExcludedMembers": ["w1"]})):
        await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier=name,
                       EndpointType=kind, **extra)
    await env.service.drain()
    members = env.service.custom_endpoint_members(_cluster(env))
    assert {name.split(".")[0]: ids for name, ids in members.items()} == {
        "readers": ["r1", "r2"], "all": ["r1", "r2", "w1"], "not-r1": ["r2"],
        "fixed": ["r2", "w1"],  # a static list is taken as given, writer too
        "any-but-w1": ["r1", "r2"],
    }
    assert set(members) == set(env.service.custom_endpoint_dns_names(_cluster(env)))
    # an instance that is not available is not reachable (it stays on the lists)
    await env.call("RebootDBInstance", DBInstanceIdentifier="r2")
    members = env.service.custom_endpoint_members(_cluster(env))
    assert members[_dns(env, "fixed")] == ["w1"] and members[_dns(env, "readers")] == ["r1"]
    await env.service.drain()
    # a new instance joins exclusion-list endpoints of its role, never static ones
    await env.instance("r3")
    members = env.service.custom_endpoint_members(_cluster(env))
    assert members[_dns(env, "readers")] == ["r1", "r2", "r3"] and members[_dns(env, "fixed")] == ["r2", "w1"]


async def test_a_deleted_instance_leaves_the_lists(env: Env) -> None:
    await _cluster_with(env, "w1", "r1", "r2")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="fixed",
                   EndpointType="ANY", StaticMembers=["r1", "r2"])
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="rest",
                   EndpointType="ANY", ExcludedMembers=["r1"])
    await env.service.drain()
    told: list[str] = []
    env.service.add_custom_endpoint_listener(lambda c: told.append(c.identifier))
    await env.call("DeleteDBInstance", DBInstanceIdentifier="r1", SkipFinalSnapshot=True)
    await env.service.drain()
    views = {e["DBClusterEndpointIdentifier"]: e for e in (await env.call(
        "DescribeDBClusterEndpoints", DBClusterIdentifier="c1", Filters=[
            {"Name": "db-cluster-endpoint-type", "Values": ["custom"]}]))["DBClusterEndpoints"]}
    assert views["fixed"]["StaticMembers"] == ["r2"] and views["rest"]["ExcludedMembers"] == []
    assert told == ["c1"]


async def test_deleting_the_cluster_deletes_its_endpoints(env: Env) -> None:
    await _cluster_with(env, "i1")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                   EndpointType="ANY")
    await env.service.drain()
    await env.call("DeleteDBInstance", DBInstanceIdentifier="i1", SkipFinalSnapshot=True)
    await env.call("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    await env.service.drain()
    assert (await env.call("DescribeDBClusterEndpoints"))["DBClusterEndpoints"] == []
    # the name is free again, for another cluster
    await env.cluster("c2")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c2", DBClusterEndpointIdentifier="e1",
                   EndpointType="ANY")


async def test_a_renamed_cluster_keeps_its_endpoints(env: Env) -> None:
    await _cluster_with(env, "i1")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                   EndpointType="ANY")
    await env.service.drain()
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", NewDBClusterIdentifier="c9", ApplyImmediately=True)
    (view,) = (await env.call("DescribeDBClusterEndpoints", DBClusterEndpointIdentifier="e1"))["DBClusterEndpoints"]
    assert view["DBClusterIdentifier"] == "c9"


async def test_recovery_finishes_interrupted_work(env: Env) -> None:
    await _cluster_with(env, "i1")
    for name in ("made", "changed", "gone"):
        await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier=name,
                       EndpointType="ANY")
    await env.service.drain()
    await env.call("ModifyDBClusterEndpoint", DBClusterEndpointIdentifier="changed", StaticMembers=["i1"])
    await env.call("DeleteDBClusterEndpoint", DBClusterEndpointIdentifier="gone")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="new",
                   EndpointType="ANY")
    # auroral stops before the background work runs
    later = env.reopen()
    await later.service.recover()
    views = (await later.call("DescribeDBClusterEndpoints", Filters=[
        {"Name": "db-cluster-endpoint-type", "Values": ["CUSTOM"]}]))["DBClusterEndpoints"]
    assert {(v["DBClusterEndpointIdentifier"], v["Status"]) for v in views} == {
        ("made", "available"), ("changed", "available"), ("new", "available")}


async def test_tags_by_arn(env: Env) -> None:
    await _cluster_with(env, "i1")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                   EndpointType="ANY", Tags=[{"Key": "a", "Value": "1"}])
    arn = _ARN + "cluster-endpoint:e1"
    await env.call("AddTagsToResource", ResourceName=_ARN + "cluster-endpoint:E1", Tags=[{"Key": "b", "Value": "2"}])
    assert (await env.call("ListTagsForResource", ResourceName=arn))["TagList"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    await env.call("RemoveTagsFromResource", ResourceName=arn, TagKeys=["a"])
    assert (await env.call("ListTagsForResource", ResourceName=arn))["TagList"] == [{"Key": "b", "Value": "2"}]
    assert env.service.resource_tags("123456789012", arn) == {"b": "2"}
    error = await env.fails("ListTagsForResource", ResourceName=_ARN + "cluster-endpoint:nope")
    assert error.code == "DBClusterEndpointNotFoundFault"
    keys = env.service.authz_keys(make_ctx(FakeAuthorizer()), "ModifyDBClusterEndpoint",
                                  {"DBClusterEndpointIdentifier": "E1"})
    assert keys == {"aws:ResourceTag/b": "2"}


@pytest.mark.parametrize(("op", "params", "arns"), [
    ("CreateDBClusterEndpoint", {"DBClusterEndpointIdentifier": "E1", "DBClusterIdentifier": "C1"},
     [_ARN + "cluster-endpoint:e1", _ARN + "cluster:c1"]),
    ("ModifyDBClusterEndpoint", {"DBClusterEndpointIdentifier": "E1"}, [_ARN + "cluster-endpoint:e1"]),
    ("DeleteDBClusterEndpoint", {"DBClusterEndpointIdentifier": "E1"}, [_ARN + "cluster-endpoint:e1"]),
    ("DescribeDBClusterEndpoints", {}, [_ARN + "cluster-endpoint:*"]),
    ("DescribeDBClusterEndpoints", {"DBClusterIdentifier": "C1"}, [_ARN + "cluster-endpoint:*", _ARN + "cluster:c1"]),
    ("DescribeDBClusterEndpoints", {"DBClusterEndpointIdentifier": "E1"}, [_ARN + "cluster-endpoint:e1"]),
    ("ListTagsForResource", {"ResourceName": _ARN + "cluster-endpoint:E1"}, [_ARN + "cluster-endpoint:e1"]),
])
async def test_authorized_resources_are_canonical(env: Env, op: str, params: dict[str, str], arns: list[str]) -> None:
    ctx = make_ctx(FakeAuthorizer(), op, params)
    assert ACTIONS[op].resolve(ctx, env.service, params) == arns


async def test_cluster_state_and_member_checks(env: Env) -> None:
    await _cluster_with(env, "i1")
    await env.cluster("c2")
    await env.instance("other", "c2")
    error = await env.fails("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                            EndpointType="ANY", StaticMembers=["other"])
    assert (error.code, error.message) == ("DBInstanceNotFound", "DBInstance other not found.")
    await env.call("DeleteDBInstance", DBInstanceIdentifier="i1", SkipFinalSnapshot=True)  # deleting, until drained
    error = await env.fails("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                            EndpointType="ANY", ExcludedMembers=["i1"])
    assert error.code == "InvalidDBInstanceState"
    await env.service.drain()
    await env.call("StopDBCluster", DBClusterIdentifier="c2")
    await env.service.drain()
    error = await env.fails("CreateDBClusterEndpoint", DBClusterIdentifier="c2", DBClusterEndpointIdentifier="e1",
                            EndpointType="ANY")
    assert error.code == "InvalidDBClusterStateFault" and "stopped" in error.message


async def test_a_renamed_instance_stays_on_the_lists(env: Env) -> None:
    await _cluster_with(env, "w1", "r1")
    await env.call("CreateDBClusterEndpoint", DBClusterIdentifier="c1", DBClusterEndpointIdentifier="e1",
                   EndpointType="ANY", StaticMembers=["r1", "w1"])
    await env.service.drain()
    await env.call("ModifyDBInstance", DBInstanceIdentifier="r1", NewDBInstanceIdentifier="r9", ApplyImmediately=True)
    await env.service.drain()  # renaming -> available
    (view,) = (await env.call("DescribeDBClusterEndpoints", DBClusterEndpointIdentifier="e1"))["DBClusterEndpoints"]
    assert view["StaticMembers"] == ["r9", "w1"]
    assert env.service.custom_endpoint_members(_cluster(env))[_dns(env, "e1")] == ["r9", "w1"]


async def test_describe_pages_across_clusters(env: Env) -> None:
    expected: list[str] = []
    for c in ("c1", "c2", "c3", "c4", "c5"):
        await env.cluster(c)
        expected += [f"{c} WRITER", f"{c} READER"]
        for n in range(3):
            await env.call("CreateDBClusterEndpoint", DBClusterIdentifier=c, DBClusterEndpointIdentifier=f"{c}-e{n}",
                           EndpointType="ANY")
            expected.append(f"{c} {c}-e{n}")
    seen: list[str] = []
    marker: dict[str, str] = {}
    pages = 0
    while True:
        pages += 1
        page = await env.call("DescribeDBClusterEndpoints", MaxRecords=20, **marker)
        seen += [f"{e['DBClusterIdentifier']} {e.get('DBClusterEndpointIdentifier', e['EndpointType'])}"
                 for e in page["DBClusterEndpoints"]]
        if "Marker" not in page:
            break
        marker = {"Marker": page["Marker"]}
    assert seen == expected and pages == 2  # 20 rows, then the other 5
