"""FailoverDBCluster against the fake runtime: which reader Aurora promotes (tier, then size, then any),
the errors, the ``failing-over`` status, the writer flags, the runtime's ``writer-lost`` event, and the
writer's deletion handing over to a reader. (The real hand-over: test_replicas_e2e.py.)"""

from __future__ import annotations

import pytest

from auroral.rds.failover import choose_reader
from auroral.rds.runtime import WRITER_LOST

from .conftest import Env


async def _cluster_with(env: Env, *readers: tuple[str, int, str]) -> None:
    await env.cluster()
    await env.instance("w")
    for name, tier, instance_class in readers:
        await env.call("CreateDBInstance", DBInstanceIdentifier=name, DBClusterIdentifier="c1",
                       Engine="aurora-postgresql", DBInstanceClass=instance_class, PromotionTier=tier)
    await env.service.drain()


def _writers(cluster: dict[str, object]) -> list[str]:
    members = cluster["DBClusterMembers"]
    assert isinstance(members, list)
    return [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]


@pytest.mark.parametrize(("readers", "chosen"), [
    ([("a", 1, "db.r6g.large"), ("b", 0, "db.r6g.large")], "b"),  # lowest tier
    ([("a", 1, "db.r6g.large"), ("b", 1, "db.r6g.2xlarge")], "b"),  # same tier: the largest
    ([("b", 2, "db.r6g.xlarge"), ("a", 2, "db.r6g.xlarge")], "a"),  # same tier and size: the first name
    ([("a", 0, "db.t4g.medium"), ("b", 1, "db.r6g.24xlarge")], "a"),  # the tier comes before the size
])
async def test_failover_without_target_chooses_as_aurora(env: Env, readers: list[tuple[str, int, str]],
                                                         chosen: str) -> None:
    await _cluster_with(env, *readers)
    out = await env.call("FailoverDBCluster", DBClusterIdentifier="c1")
    assert out["DBCluster"]["Status"] == "failing-over"
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert cluster["Status"] == "available" and _writers(cluster) == [chosen]
    target = await env.describe_instance(chosen)
    assert env.runtime.failovers == [(target["DbiResourceId"], True)]


async def test_failover_with_target(env: Env) -> None:
    await _cluster_with(env, ("a", 0, "db.r6g.large"), ("b", 15, "db.r6g.large"))
    await env.call("FailoverDBCluster", DBClusterIdentifier="C1", TargetDBInstanceIdentifier="b")
    await env.service.drain()
    assert _writers(await env.describe_cluster()) == ["b"]


@pytest.mark.parametrize(("params", "code"), [
    ({"DBClusterIdentifier": "nope"}, "DBClusterNotFoundFault"),
    ({"TargetDBInstanceIdentifier": "nope"}, "DBInstanceNotFound"),  # the wire codes of these two
    ({"TargetDBInstanceIdentifier": "w"}, "InvalidDBInstanceState"),
    ({"TargetDBInstanceIdentifier": "other"}, "InvalidParameterValue"),
])
async def test_failover_errors(env: Env, params: dict[str, str], code: str) -> None:
    await _cluster_with(env, ("a", 1, "db.r6g.large"))
    await env.cluster("c2")
    await env.instance("other", "c2")
    err = await env.fails("FailoverDBCluster", **{"DBClusterIdentifier": "c1", **params})
    assert err.code == code
    assert _writers(await env.describe_cluster()) == ["w"]
    assert env.runtime.failovers == []


async def test_failover_needs_a_reader_and_an_available_cluster(env: Env) -> None:
    await _cluster_with(env)
    err = await env.fails("FailoverDBCluster", DBClusterIdentifier="c1")
    assert err.code == "InvalidDBClusterStateFault"
    await env.instance("a")
    await env.call("StopDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    err = await env.fails("FailoverDBCluster", DBClusterIdentifier="c1")
    assert err.code == "InvalidDBClusterStateFault"


async def test_a_failed_hand_over_keeps_the_writer(env: Env) -> None:
    await _cluster_with(env, ("a", 1, "db.r6g.large"))
    env.runtime.fail["failover"] = "the target did not catch up"
    await env.call("FailoverDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert cluster["Status"] == "available" and _writers(cluster) == ["w"]


async def test_writer_lost_fails_over_by_itself(env: Env) -> None:
    await _cluster_with(env, ("a", 1, "db.r6g.large"))
    rid = (await env.describe_cluster())["DbClusterResourceId"]
    assert env.runtime.listener is not None
    env.runtime.listener(rid, "failed", "postmaster exited")
    assert (await env.describe_instance("w"))["DBInstanceStatus"] == "failed"
    assert (await env.describe_instance("a"))["DBInstanceStatus"] == "available"  # its own server
    env.runtime.listener(rid, WRITER_LOST, "did not come back")
    assert (await env.describe_cluster())["Status"] == "failing-over"
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert cluster["Status"] == "available" and _writers(cluster) == ["a"]
    assert (await env.describe_instance("w"))["DBInstanceStatus"] == "available"  # rejoined as a reader


async def test_deleting_the_writer_fails_over_first(env: Env) -> None:
    await _cluster_with(env, ("a", 1, "db.r6g.large"))
    await env.call("DeleteDBInstance", DBInstanceIdentifier="w")
    await env.service.drain()
    cluster = await env.describe_cluster()
    assert _writers(cluster) == ["a"] and cluster["Status"] == "available"
    assert env.runtime.failovers[-1][1] is False  # the old writer does not rejoin: it is being deleted
    assert ("delete_instance", next(t for op, t in env.runtime.calls if op == "close_endpoint")) in env.runtime.calls


def test_choose_reader_of_nothing() -> None:
    assert choose_reader([]) is None
