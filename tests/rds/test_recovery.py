"""State survives a new RdsService on the same store, and ``recover()`` re-establishes what the
store says after a restart (servers started, endpoints reopened, interrupted work finished)."""

from __future__ import annotations

from auroral.rds.model import Cluster, Instance

from .conftest import Env
from .fakes import FakeRuntime


async def test_a_new_service_sees_the_same_resources(env: Env) -> None:
    created = await env.cluster(Tags=[{"Key": "k", "Value": "v"}])
    await env.instance()
    again = env.reopen()
    cluster = await again.describe_cluster()
    assert cluster["DbClusterResourceId"] == created["DbClusterResourceId"]
    assert cluster["ClusterCreateTime"] == created["ClusterCreateTime"]
    assert cluster["TagList"] == [{"Key": "k", "Value": "v"}]
    assert (await again.describe_instance())["DBInstanceStatus"] == "available"


async def test_recover_restarts_available_clusters_and_reopens_endpoints(env: Env) -> None:
    await env.cluster()
    await env.instance()
    await env.instance("i2")
    fresh = FakeRuntime()  # a restarted process: nothing runs
    restarted = env.reopen(fresh)
    await restarted.service.recover()
    cluster = await restarted.describe_cluster()
    assert cluster["Status"] == "available" and fresh.servers[cluster["DbClusterResourceId"]].running
    assert fresh.servers[cluster["DbClusterResourceId"]].parameters["rds.force_ssl"] == "1"
    i1, i2 = await restarted.describe_instance("i1"), await restarted.describe_instance("i2")
    assert i1["Endpoint"]["Port"] == fresh.endpoints[i1["DbiResourceId"]][1]
    assert i2["DbiResourceId"] in fresh.endpoints
    assert cluster["Port"] == i1["Endpoint"]["Port"]


def _put(env: Env, cluster: Cluster, *instances: Instance) -> None:
    env.service._save_cluster(cluster)
    for instance in instances:
        env.service._save_instance(instance)


async def test_recover_finishes_or_reports_interrupted_work(env: Env) -> None:
    for ident in ("creating", "deleting", "stopping", "stopped", "resetting"):
        await env.cluster(ident)
    await env.instance("i-stopping", "stopping")
    await env.instance("i-deleting", "resetting")
    await env.instance("i-kept", "resetting")
    svc = env.service
    acct = "123456789012"
    for ident, status in (("creating", "creating"), ("deleting", "deleting"), ("stopping", "stopping"),
                          ("stopped", "stopped"), ("resetting", "resetting-master-credentials")):
        c = svc._cluster(acct, ident)
        c.status = status
        svc._save_cluster(c)
    gone = svc._instance(acct, "i-deleting")
    gone.status = "deleting"
    svc._save_instance(gone)
    fresh = FakeRuntime()
    restarted = env.reopen(fresh)
    await restarted.service.recover()
    rsvc = restarted.service
    creating = rsvc._cluster(acct, "creating")
    assert creating.status == "failed" and creating.status_reason
    assert rsvc._get_cluster(acct, "deleting") is None
    assert ("delete_cluster", svc._cluster(acct, "stopped").resource_id) not in fresh.calls
    assert rsvc._cluster(acct, "stopping").status == "stopped"
    assert rsvc._instance(acct, "i-stopping").status == "stopped"
    assert rsvc._cluster(acct, "stopped").status == "stopped"
    resetting = rsvc._cluster(acct, "resetting")
    assert resetting.status == "available" and "password again" in (resetting.status_reason or "")
    assert rsvc._get_instance(acct, "i-deleting") is None
    kept = rsvc._instance(acct, "i-kept")
    assert kept.status == "available" and kept.resource_id in fresh.endpoints
    assert kept.is_writer  # the deleted writer's place was taken


async def test_an_instance_renaming_when_auroral_stopped_serves_under_its_new_name(env: Env) -> None:
    await env.cluster()
    await env.instance()
    svc, acct = env.service, "123456789012"
    # the rename was stored (it is stored before it is acted on), its runtime half never ran
    instance = svc._instance(acct, "i1")
    svc._drop_instance(instance)
    instance.identifier = "i9"
    instance.transition("renaming")
    svc._save_instance(instance)
    fresh = FakeRuntime()
    restarted = env.reopen(fresh)
    await restarted.service.recover()
    renamed = await restarted.describe_instance("i9")
    assert renamed["DBInstanceStatus"] == "available" and renamed["DbiResourceId"] in fresh.endpoints
