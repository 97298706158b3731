"""A cluster's life with real PostgreSQL behind it: stop/start keeps the data and really closes the
door, reboot restarts the server, a killed postmaster is noticed and restarted by the supervisor,
and deleting leaves no PostgreSQL process and no data directory behind."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psycopg
import pytest

from .e2e_helpers import (
    FAST,
    cluster_dir,
    create_db,
    delete_db,
    postgres_processes,
    postmaster_pid,
    until,
    wait_cluster_gone,
    wait_instance_gone,
    wait_status,
)


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def test_stop_start_reboot_and_delete(server: Any, rds: Any) -> None:
    db = create_db(rds, prefix="e2e-life")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('before stop')")
        assert postgres_processes(db.resource_id)

        seen: list[str] = []
        assert rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)["DBCluster"]["Status"] == "stopping"
        wait_status(rds, db.cluster_id, "stopped", seen=seen)
        instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
        assert instance["DBInstanceStatus"] == "stopped"
        with pytest.raises(psycopg.OperationalError):
            db.connect().close()
        assert postgres_processes(db.resource_id) == []

        assert rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)["DBCluster"]["Status"] == "starting"
        wait_status(rds, db.cluster_id, "available", seen=seen)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        port = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Port"]
        assert port == db.port
        with until(lambda: db.connect(), what="connect after start") as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("before stop",)]

        # reboot: the server really restarts (a new postmaster), sessions are cut, data stays
        old_pid = postmaster_pid(server.data_dir, db.resource_id)
        session = db.connect()
        assert rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)["DBInstance"][
            "DBInstanceStatus"] == "rebooting"
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0][
            "DBInstanceStatus"] == "available" and postmaster_pid(server.data_dir, db.resource_id) != old_pid,
            what="rebooted")
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        session.close()
        with until(lambda: db.connect(), what="connect after reboot") as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)

        # delete: instance, then cluster; nothing of the server survives
        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True)
        wait_cluster_gone(rds, db.cluster_id)
        until(lambda: postgres_processes(db.resource_id) == [], timeout=10, what="no postgres processes")
        assert not cluster_dir(server.data_dir, db.resource_id).exists()
        with pytest.raises(psycopg.OperationalError):
            db.connect().close()
    finally:
        delete_db(rds, db)


def test_killed_postmaster_is_restarted(server: Any, rds: Any) -> None:
    db = create_db(rds, prefix="e2e-kill")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (7)")
        pid = postmaster_pid(server.data_dir, db.resource_id)
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()

        def back() -> bool:
            new_pid = postmaster_pid(server.data_dir, db.resource_id)
            with db.connect() as conn:
                assert conn.execute("SELECT v FROM t").fetchone() == (7,)
            return new_pid != pid

        until(back, timeout=15, what="the cluster answering again after kill -9 of its postmaster")
        assert time.monotonic() - started < 15
        wait_status(rds, db.cluster_id, "available", timeout=10)
        instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
        assert instance["DBInstanceStatus"] == "available"
        assert not _alive(pid)
    finally:
        delete_db(rds, db)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_that_cannot_start_reports_failed(server: Any, rds: Any) -> None:
    """A PostgreSQL that refuses to start (a broken setting in its own ``postgresql.auto.conf``, which
    the engine does not own) makes StartDBCluster end in ``failed``, never ``available``; a failed
    cluster can still be deleted, and nothing of it is left behind."""
    db = create_db(rds, prefix="e2e-broken")
    try:
        rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_status(rds, db.cluster_id, "stopped")
        auto_conf = cluster_dir(server.data_dir, db.resource_id) / "pgdata" / "postgresql.auto.conf"
        with open(auto_conf, "a") as handle:
            handle.write("\nshared_buffers = 'not a size'\n")

        rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)
        seen: list[str] = []
        wait_status(rds, db.cluster_id, "failed", timeout=30, seen=seen)
        assert "available" not in seen, seen
        with pytest.raises(psycopg.OperationalError):
            db.connect().close()
        assert postgres_processes(db.resource_id) == []

        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True)
        wait_cluster_gone(rds, db.cluster_id)
        assert not cluster_dir(server.data_dir, db.resource_id).exists()
    finally:
        delete_db(rds, db)
