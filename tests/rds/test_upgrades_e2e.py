"""Engine version upgrades against real PostgreSQL servers, driven with unmodified boto3 and psycopg:
a minor upgrade (immediately, and pending then applied with ApplyPendingMaintenanceAction) restarts
the servers; a major upgrade 15 → 16 runs pg_upgrade and keeps the data, the master's login, the roles
the master made and their rds_iam membership, and the reader (cloned again from the upgraded writer).

The server gets every PostgreSQL major it may need: installed (``AURORAL_PG_BINDIR`` as given, the
embedded build) or fetched on first use (``AURORAL_ENGINE_FETCH=0`` turns that off). A test skips only
when a major it needs is neither installed nor fetchable."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from auroral.engine import binaries, fetch
from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server

from .e2e_helpers import Db, create_db, delete_db, ident, until

UPGRADE_TIMEOUT = 600

# The majors the server can run: installed ones with pg_upgrade, and those it fetches on first use
# (``engine/fetch.py``; tests/conftest.py keeps the fetched builds in one cache for every test run).
BINDIRS = os.environ.get(binaries.ENV_BINDIR, "")
MAJORS = {i.major for i in binaries.available() if i.tool("pg_upgrade").is_file()} | set(fetch.fetchable_majors())


def needs(*majors: int) -> None:
    missing = [m for m in majors if m not in MAJORS]
    if missing:
        pytest.skip(f"no PostgreSQL {', '.join(map(str, missing))} installation with pg_upgrade")


@pytest.fixture(scope="module")
def rds() -> Iterator[Any]:
    key, secret = new_root_key()
    base = server_tmpdir()
    env: dict[str, str] = {}
    if BINDIRS:
        env[binaries.ENV_BINDIR] = BINDIRS
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="222233334444", extra_env=env)
    try:
        yield srv.client("rds")
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)


def _cluster(rds: Any, db: Db) -> dict[str, Any]:
    return dict(rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0])


def _wait_upgraded(rds: Any, db: Db, version: str) -> dict[str, Any]:
    until(lambda: _cluster(rds, db)["Status"] == "available" and _cluster(rds, db)["EngineVersion"] == version,
          timeout=UPGRADE_TIMEOUT, what=f"the cluster on {version}")
    for member in _cluster(rds, db)["DBClusterMembers"]:
        until(lambda m=member: rds.describe_db_instances(DBInstanceIdentifier=m["DBInstanceIdentifier"])
              ["DBInstances"][0]["DBInstanceStatus"] == "available", timeout=120, what="the instance available")
    return _cluster(rds, db)


def _started_at(db: Db) -> Any:
    with db.connect() as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None
        return row[0]


def _error(rds: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(rds.exceptions.ClientError) as info:
        rds.modify_db_cluster(**params)
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def test_minor_upgrade_immediately_and_pending(rds: Any) -> None:
    needs(16)
    db = create_db(rds, prefix="upg-minor", engine_version="16.4")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
        before = _started_at(db)
        out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EngineVersion="16.6", ApplyImmediately=True)
        assert out["DBCluster"]["Status"] == "upgrading"
        _wait_upgraded(rds, db, "16.6")
        after = _started_at(db)
        assert after > before  # the server restarted
        with db.connect() as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)
            version = conn.execute("SELECT aurora_version()").fetchone()
            assert version is not None and str(version[0]).startswith("16.6")

        # without ApplyImmediately: a pending maintenance action, applied on request
        out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EngineVersion="16.8")
        assert out["DBCluster"]["Status"] == "available"
        assert out["DBCluster"]["PendingModifiedValues"]["EngineVersion"] == "16.8"
        arn = out["DBCluster"]["DBClusterArn"]
        pending = rds.describe_pending_maintenance_actions(ResourceIdentifier=arn)["PendingMaintenanceActions"]
        assert [p["PendingMaintenanceActionDetails"][0]["Action"] for p in pending] == ["db-upgrade"]
        assert _cluster(rds, db)["EngineVersion"] == "16.6" and _started_at(db) == after
        applied = rds.apply_pending_maintenance_action(ResourceIdentifier=arn, ApplyAction="db-upgrade",
                                                       OptInType="immediate")
        assert applied["ResourcePendingMaintenanceActions"]["ResourceIdentifier"] == arn
        _wait_upgraded(rds, db, "16.8")
        assert _started_at(db) > after
        assert rds.describe_pending_maintenance_actions(ResourceIdentifier=arn)["PendingMaintenanceActions"] == []
    finally:
        delete_db(rds, db)


@pytest.mark.parametrize(("source", "target"), [("15.4", "16.4"), ("14.6", "15.4"), ("16.4", "17.4")])
def test_major_upgrade_keeps_the_data(rds: Any, source: str, target: str) -> None:
    old_major, new_major = int(source.split(".")[0]), int(target.split(".")[0])
    needs(old_major, new_major)
    db = create_db(rds, prefix="upg-major", engine_version=source)
    reader = ident("upg-major-r")
    try:
        rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=db.cluster_id,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        with db.connect() as conn:
            assert conn.info.server_version // 10000 == old_major
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g")
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'App-pass-1234'")
            conn.execute("GRANT SELECT ON items TO app")
            conn.execute("CREATE ROLE iam_user LOGIN")
            conn.execute("GRANT rds_iam TO iam_user")

        # AWS's refusals
        assert _error(rds, DBClusterIdentifier=db.cluster_id, EngineVersion=target, ApplyImmediately=True) == (
            "InvalidParameterCombination",
            "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.")
        assert _error(rds, DBClusterIdentifier=db.cluster_id, EngineVersion="13.9", ApplyImmediately=True,
                      AllowMajorVersionUpgrade=True)[1] in (
            f"Cannot upgrade aurora-postgresql from {source} to 13.9", "Cannot find version 13.9 for aurora-postgresql")
        group = ident("upg-gold")
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, Description="old",
                                              DBParameterGroupFamily=f"aurora-postgresql{old_major}")
        code, message = _error(rds, DBClusterIdentifier=db.cluster_id, EngineVersion=target, ApplyImmediately=True,
                               AllowMajorVersionUpgrade=True, DBClusterParameterGroupName=group)
        assert code == "InvalidParameterCombination" and f"aurora-postgresql{new_major}" in message

        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DBInstanceStatus"]
              == "available", timeout=120, what="the reader available")
        started = time.monotonic()
        out = rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EngineVersion=target,
                                    AllowMajorVersionUpgrade=True, ApplyImmediately=True)
        assert out["DBCluster"]["Status"] == "upgrading"
        cluster = _wait_upgraded(rds, db, target)
        print(f"major upgrade {source} -> {target} of a small cluster with a reader: {time.monotonic() - started:.1f} s")
        assert cluster["DBClusterParameterGroup"] == f"default.aurora-postgresql{new_major}"
        instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
        assert instance["EngineVersion"] == target

        with db.connect() as conn:  # the master's password still logs in
            assert str(conn.execute("SHOW server_version").fetchone()[0]).startswith(f"{new_major}.")  # type: ignore[index]
            assert conn.execute("SELECT count(*), max(name) FROM items").fetchone() == (1000, "item 999")
            assert conn.execute("SELECT rolname FROM pg_roles WHERE pg_has_role('iam_user', oid, 'member') "
                                "AND rolname = 'rds_iam'").fetchone() == ("rds_iam",)
            assert conn.execute("SELECT pg_has_role(current_user, 'rds_superuser', 'member')").fetchone() == (True,)
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
            version = conn.execute("SELECT aurora_version()").fetchone()
            assert version is not None and str(version[0]).startswith(target)
            conn.execute("CREATE ROLE after_upgrade LOGIN PASSWORD 'After-pass-1234'")  # CREATEROLE on the new major
            conn.execute("DROP ROLE after_upgrade")
        with psycopg.connect(host=db.host, port=db.port, user="app", password="App-pass-1234", dbname=db.database,
                             sslmode="require", connect_timeout=10) as app:
            assert app.execute("SELECT count(*) FROM items").fetchone() == (1000,)

        # the reader serves the upgraded data, on 16
        endpoint = rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["Endpoint"]
        with psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], user=db.master, password=db.password,
                             dbname=db.database, sslmode="require", connect_timeout=10) as conn:
            assert conn.info.server_version // 10000 == new_major
            assert conn.execute("SELECT pg_is_in_recovery(), count(*) FROM items").fetchone() == (True, 1000)
    finally:
        for member in _cluster(rds, db)["DBClusterMembers"]:
            if member["DBInstanceIdentifier"] != db.instance_id:
                rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
        delete_db(rds, db)


def test_metadata_as_boto3_reads_it(rds: Any) -> None:
    needs(16)
    versions = rds.describe_db_engine_versions(Engine="aurora-postgresql", EngineVersion="16.4")["DBEngineVersions"]
    [v164] = versions
    assert v164["DBParameterGroupFamily"] == "aurora-postgresql16" and v164["MajorEngineVersion"] == "16"
    targets = {t["EngineVersion"]: t["IsMajorVersionUpgrade"] for t in v164["ValidUpgradeTarget"]}
    assert targets["16.6"] is False and all(t.startswith("16.") != major for t, major in targets.items())
    assert "Lambda" in v164["SupportedFeatureNames"] and v164["SupportsLimitlessDatabase"] is False
    options = rds.describe_orderable_db_instance_options(Engine="aurora-postgresql", EngineVersion="16.4",
                                                         DBInstanceClass="db.r6g.large")["OrderableDBInstanceOptions"]
    assert [(o["DBInstanceClass"], o["StorageType"], o["SupportsIAMDatabaseAuthentication"]) for o in options] == [
        ("db.r6g.large", "aurora", True)]
    paginator = rds.get_paginator("describe_orderable_db_instance_options")
    pages = list(paginator.paginate(Engine="aurora-postgresql", EngineVersion="16.4", PaginationConfig={"PageSize": 20}))
    assert len(pages) > 1 and len({o["DBInstanceClass"] for p in pages for o in p["OrderableDBInstanceOptions"]}) > 20


def test_auroral_killed_during_pg_upgrade_finishes_it_at_restart() -> None:
    """kill -9 of auroral while pg_upgrade fills the new data directory: the next start stops what the
    upgrade left running, discards the half-made directory, runs the upgrade again and loses nothing."""
    needs(15, 16)
    key, secret = new_root_key()
    base = server_tmpdir()
    env: dict[str, str] = {}
    if BINDIRS:
        env[binaries.ENV_BINDIR] = BINDIRS
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="222233335555", extra_env=env)
    try:
        rds = srv.client("rds")
        db = create_db(rds, prefix="upg-kill", engine_version="15.4")
        with db.connect() as conn:
            conn.execute("CREATE TABLE kept AS SELECT g AS n FROM generate_series(1, 200000) g")
        cluster_dir = base / "data" / "engine" / "clusters" / db.resource_id
        rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, EngineVersion="16.4",
                              AllowMajorVersionUpgrade=True, ApplyImmediately=True)
        until(lambda: (cluster_dir / "pgdata.upgrade" / "PG_VERSION").exists(), timeout=120,
              what="pg_upgrade's new data directory")
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        port = int(srv.url.rsplit(":", 1)[1])
        srv = start_server(base / "data", access_key=key, secret_key=secret, account="222233335555", port=port,
                           extra_env=env)
        rds = srv.client("rds")
        _wait_upgraded(rds, db, "16.4")
        with db.connect() as conn:
            assert conn.info.server_version // 10000 == 16
            assert conn.execute("SELECT count(*), sum(n) FROM kept").fetchone() == (200000, 200000 * 200001 // 2)
        assert sorted(p.name for p in cluster_dir.iterdir() if p.name.startswith("pgdata")) == ["pgdata"]
        delete_db(rds, db)
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)
