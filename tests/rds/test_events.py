"""RDS events against the fake runtime: recorded where the state changes (with AWS's IDs and messages),
DescribeEvents' filters, window, paging and errors, the 14 days they are kept, per region, and
DescribeEventCategories. (End to end, on real PostgreSQL: test_events_e2e.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from auroral.rds import events
from auroral.rds.service import RdsService
from auroral.store import Store

from .conftest import Env
from .fakes import ACCOUNT, REGION, make_ctx

_CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:c1"


def _stored(env: Env) -> list[tuple[str, str, str]]:
    """(source id, event id, message) of every stored event, oldest first."""
    return [(e.source_id, e.event_id, e.message) for _, e in events.list_events(env.store, ACCOUNT)]


async def test_lifecycle_events_carry_aws_ids_and_messages(env: Env) -> None:
    await env.cluster()
    await env.instance("w")
    await env.instance("r")
    zones = {(await env.describe_instance(n))["AvailabilityZone"] for n in ("w", "r")}
    started = (("RDS-EVENT-0072", "Started same AZ failover to DB instance: r") if len(zones) == 1
               else ("RDS-EVENT-0073", "Started cross AZ failover to DB instance: r"))
    await env.call("RebootDBInstance", DBInstanceIdentifier="r")
    await env.service.drain()
    await env.call("FailoverDBCluster", DBClusterIdentifier="c1", TargetDBInstanceIdentifier="r")
    await env.service.drain()
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", MasterUserPassword="Other-pass-1",
                   ApplyImmediately=True)
    await env.service.drain()
    for name in ("w", "r"):
        await env.call("DeleteDBInstance", DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        await env.service.drain()
    await env.call("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    await env.service.drain()
    stored = _stored(env)
    assert stored == [
        ("c1", "RDS-EVENT-0170", "DB cluster created"),
        ("w", "RDS-EVENT-0005", "DB instance created"),
        ("r", "RDS-EVENT-0005", "DB instance created"),
        ("r", "RDS-EVENT-0006", "DB instance restarted"),
        ("c1", *started),
        ("c1", "RDS-EVENT-0071", "Completed failover to DB instance: r"),
        ("c1", "RDS-EVENT-0016", "Reset master credentials"),
        ("w", "RDS-EVENT-0003", "DB instance deleted"),
        ("r", "RDS-EVENT-0003", "DB instance deleted"),
        ("c1", "RDS-EVENT-0171", "DB cluster deleted"),
    ]
    # what DescribeEvents shows of them (no event ID in the API's Event shape)
    out = await env.call("DescribeEvents", SourceType="db-cluster", SourceIdentifier="C1")
    assert [e["Message"] for e in out["Events"]] == [
        "DB cluster created", started[1], "Completed failover to DB instance: r", "Reset master credentials",
        "DB cluster deleted"]
    first = out["Events"][0]
    assert (first["SourceIdentifier"], first["SourceType"], first["SourceArn"], first["EventCategories"]) == (
        "c1", "db-cluster", _CLUSTER_ARN, ["creation"])
    assert abs((first["Date"] - datetime.now(UTC)).total_seconds()) < 60


async def test_failed_things_record_no_success(env: Env) -> None:
    env.runtime.fail["create_cluster"] = "disk full"
    await env.cluster()
    assert _stored(env) == []
    env.runtime.fail.clear()


async def test_failover_across_zones_and_failure(env: Env) -> None:
    await env.cluster()
    await env.call("CreateDBInstance", DBInstanceIdentifier="w", DBClusterIdentifier="c1", Engine="aurora-postgresql",
                   DBInstanceClass="db.r6g.large", AvailabilityZone=f"{REGION}a")
    await env.call("CreateDBInstance", DBInstanceIdentifier="r", DBClusterIdentifier="c1", Engine="aurora-postgresql",
                   DBInstanceClass="db.r6g.large", AvailabilityZone=f"{REGION}b")
    await env.service.drain()
    await env.call("FailoverDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    assert ("c1", "RDS-EVENT-0073", "Started cross AZ failover to DB instance: r") in _stored(env)
    env.runtime.fail["failover"] = "the replica is gone"
    await env.call("FailoverDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    assert _stored(env)[-2:] == [
        ("c1", "RDS-EVENT-0073", "Started cross AZ failover to DB instance: w"),
        ("c1", "RDS-EVENT-0069", "Cluster failover failed, check the health of your cluster instances and try again"),
    ]


async def test_parameter_and_stop_start_events(env: Env) -> None:
    await env.call("CreateDBClusterParameterGroup", DBClusterParameterGroupName="pg",
                   DBParameterGroupFamily="aurora-postgresql16", Description="d")
    await env.cluster(DBClusterParameterGroupName="pg")
    await env.instance("w")
    await env.call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="pg", Parameters=[
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    await env.service.drain()
    await env.call("StopDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    await env.call("StartDBCluster", DBClusterIdentifier="c1")
    await env.service.drain()
    assert _stored(env)[2:] == [
        ("pg", "RDS-EVENT-0037", "Updated parameter log_connections to 1 with apply method immediate"),
        ("w", "RDS-EVENT-0092", "Finished updating DB parameter group"),
        ("c1", "RDS-EVENT-0150", "DB cluster stopped"),
        ("c1", "RDS-EVENT-0151", "DB cluster started"),
    ]
    out = await env.call("DescribeEvents", SourceType="db-parameter-group", SourceIdentifier="pg")
    assert [(e["SourceArn"], e["EventCategories"]) for e in out["Events"]] == [
        (f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-pg:pg", ["configuration change"])]


def _fill(store: Store, n: int, *, start: datetime, step: timedelta, source: str = "c1") -> None:
    for i in range(n):
        events.record_event(store, "db-cluster", source, f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{source}",
                            ["notification"], f"event {i}", "RDS-EVENT-0151", date=start + i * step)


async def test_window_duration_and_paging(env: Env) -> None:
    now = datetime.now(UTC)
    _fill(env.store, 45, start=now - timedelta(minutes=44, seconds=30), step=timedelta(minutes=1))
    _fill(env.store, 3, start=now - timedelta(hours=5), step=timedelta(minutes=1), source="old")
    assert len((await env.call("DescribeEvents"))["Events"]) == 45  # the last 60 minutes, at most 100
    assert len((await env.call("DescribeEvents", Duration=10))["Events"]) == 10
    assert len((await env.call("DescribeEvents", Duration=360))["Events"]) == 48
    out = await env.call("DescribeEvents", StartTime=now - timedelta(hours=6), EndTime=now - timedelta(hours=4))
    assert [e["SourceIdentifier"] for e in out["Events"]] == ["old"] * 3
    seen: list[str] = []
    marker = None
    while True:
        page = await env.call("DescribeEvents", MaxRecords=20, **({"Marker": marker} if marker else {}))
        seen += [e["Message"] for e in page["Events"]]
        marker = page.get("Marker")
        if not marker:
            break
    assert seen == [f"event {i}" for i in range(45)]  # oldest first, each once
    for category, n in (("notification", 45), ("Notification", 45), ("creation", 0)):
        out = await env.call("DescribeEvents", SourceType="db-cluster", EventCategories=[category])
        assert len(out["Events"]) == n


async def test_errors(env: Env) -> None:
    err = await env.fails("DescribeEvents", SourceIdentifier="c1")
    assert (err.code, err.status) == ("InvalidParameterCombination", 400)
    err = await env.fails("DescribeEvents", SourceType="db-cluster-parameter-group")
    assert err.code == "InvalidParameterValue"
    err = await env.fails("DescribeEvents", SourceType="db-cluster", EventCategories=["backtrack"])
    assert err.code == "InvalidParameterValue" and "backtrack" in err.message
    now = datetime.now(UTC)
    err = await env.fails("DescribeEvents", StartTime=now, EndTime=now - timedelta(hours=1))
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("DescribeEvents", MaxRecords=5)
    assert err.code == "InvalidParameterValue"
    err = await env.fails("DescribeEvents", SourceType="db-cluster", SourceIdentifier="a--b")
    assert err.code == "InvalidParameterValue"
    err = await env.fails("DescribeEvents", Duration=-1)
    assert err.code == "InvalidParameterValue"
    # hostile sizes are answers, not failures
    assert (await env.call("DescribeEvents", Duration=2**62))["Events"] == []
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    assert (await env.call("DescribeEvents", EndTime=year_one))["Events"] == []
    assert (await env.call("DescribeEvents", EndTime=year_one, Duration=5))["Events"] == []
    err = await env.fails("DescribeEventCategories", SourceType="nothing")
    assert err.code == "InvalidParameterValue"


async def test_events_expire_after_14_days(env: Env) -> None:
    now = datetime.now(UTC)
    _fill(env.store, 2, start=now - timedelta(days=15), step=timedelta(days=2))  # 15 and 13 days old
    out = await env.call("DescribeEvents", StartTime=now - timedelta(days=20))
    assert [e["Message"] for e in out["Events"]] == ["event 1"]  # never shown once older than 14 days
    # the first write of an account purges what is older (then at most once a minute)
    assert [e.message for _, e in events.list_events(env.store, ACCOUNT)] == ["event 1"]
    assert events.purge_expired(env.store, ACCOUNT, now + timedelta(days=1)) == 0
    assert events.purge_expired(env.store, ACCOUNT, now + timedelta(days=2)) == 1
    assert events.list_events(env.store, ACCOUNT) == []


async def test_events_are_per_account_and_region(env: Env, tmp_path: Path) -> None:
    _fill(env.store, 1, start=datetime.now(UTC), step=timedelta(0))
    west = RdsService(env.store.in_region("us-west-2", REGION), env.runtime, env.directory, "us-west-2")
    assert west.DescribeEvents(make_ctx(env.authorizer, "DescribeEvents"), {})["Events"] == []
    events.record_event(env.store, "db-instance", "i", f"arn:aws:rds:{REGION}:999999999999:db:i", ["creation"],
                        "DB instance created", "RDS-EVENT-0005")
    assert [e["Message"] for e in (await env.call("DescribeEvents"))["Events"]] == ["event 0"]


async def test_events_survive_a_restart(env: Env) -> None:
    await env.cluster()
    again = env.reopen()
    out = await again.call("DescribeEvents", SourceType="db-cluster")
    assert [e["Message"] for e in out["Events"]] == ["DB cluster created"]


async def test_event_categories(env: Env) -> None:
    out = await env.call("DescribeEventCategories", SourceType="db-cluster")
    assert out["EventCategoriesMapList"] == [{"SourceType": "db-cluster",
                                              "EventCategories": list(events.CATEGORIES["db-cluster"])}]
    every = (await env.call("DescribeEventCategories"))["EventCategoriesMapList"]
    assert {m["SourceType"] for m in every} == set(events.CATEGORIES)
    # every event auroral records is in its source type's categories
    for spec in (v for v in vars(events).values() if isinstance(v, events.EventSpec)):
        assert any(set(spec.categories) <= set(cats) for cats in events.CATEGORIES.values()), spec


def test_record_event_refuses_unknown_source_types(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        for bad in ("db-cluster-parameter-group", ""):
            try:
                events.record_event(store, bad, "x", _CLUSTER_ARN, ["creation"], "m", "RDS-EVENT-0000")
            except ValueError:
                continue
            raise AssertionError(bad)
    finally:
        store.close()


async def test_upgrade_and_rename_events(env: Env) -> None:
    await env.cluster("c1", EngineVersion="15.4")
    await env.instance("w")
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.4", AllowMajorVersionUpgrade=True,
                   ApplyImmediately=True)
    await env.service.drain()
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.6", ApplyImmediately=True)
    await env.service.drain()
    env.runtime.fail["upgrade_cluster"] = "pg_upgrade failed"
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", EngineVersion="16.8", ApplyImmediately=True)
    await env.service.drain()
    await env.call("ModifyDBCluster", DBClusterIdentifier="c1", NewDBClusterIdentifier="c2", ApplyImmediately=True)
    assert _stored(env)[2:] == [
        ("c1", "RDS-EVENT-0177", "Database cluster upgrade is in progress"),
        ("c1", "RDS-EVENT-0176", "Database cluster engine major version has been upgraded"),
        ("c1", "RDS-EVENT-0177", "Database cluster upgrade is in progress"),
        ("c1", "RDS-EVENT-0173", "Database cluster engine version has been upgraded"),
        ("c1", "RDS-EVENT-0177", "Database cluster upgrade is in progress"),  # and nothing more: it failed
        ("c2", "RDS-EVENT-0172", "Renamed cluster from c1 to c2"),
    ]
