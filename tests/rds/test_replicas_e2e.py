"""Readers are real streaming replicas: each reader instance has a PostgreSQL server of its own, a hot
standby of the writer's (pg_basebackup + a physical slot on the writer, peer authentication over the
private socket as ``rdsrepladmin``, no password on disk), reached through its own endpoint. Writes on
the writer appear on the reader; the reader refuses writes; deleting it removes its server and slot."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from .e2e_helpers import Db, create_db, delete_db, ident, postgres_processes, until, wait_instance_gone


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def add_reader(rds: Any, db: Db, *, tier: int = 1, instance_class: str = "db.r6g.large") -> tuple[str, float]:
    """A reader instance of ``db``'s cluster; its identifier and the seconds until it accepted a login."""
    reader = ident("e2e-rep-r")
    started = time.monotonic()
    rds.create_db_instance(DBInstanceIdentifier=reader, DBClusterIdentifier=db.cluster_id, Engine="aurora-postgresql",
                           DBInstanceClass=instance_class, PromotionTier=tier)
    # CreateDBInstance answers once the work is done (for at most 10 s: rds/base.py _settle)
    until(lambda: rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DBInstanceStatus"]
          == "available", timeout=60, what="the reader available")
    with connect_instance(rds, db, reader):
        pass
    return reader, time.monotonic() - started


def instance_address(rds: Any, instance_id: str) -> tuple[str, int]:
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["Endpoint"]
    return endpoint["Address"], endpoint["Port"]


def connect_instance(rds: Any, db: Db, instance_id: str) -> psycopg.Connection[tuple[Any, ...]]:
    host, port = instance_address(rds, instance_id)
    return psycopg.connect(host=host, port=port, user=db.master, password=db.password, dbname=db.database,
                           sslmode="require", connect_timeout=10, autocommit=True)


@pytest.fixture(scope="module")
def cluster(rds: Any) -> Any:
    db = create_db(rds, prefix="e2e-rep")
    yield db
    for member in rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["DBClusterMembers"]:
        if member["DBInstanceIdentifier"] != db.instance_id:
            rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
            wait_instance_gone(rds, member["DBInstanceIdentifier"])
    delete_db(rds, db)


@pytest.fixture(scope="module")
def reader(rds: Any, cluster: Db) -> str:
    """A reader of ``cluster``, added after a row was written on the writer."""
    with cluster.connect() as writer:
        writer.execute("CREATE TABLE IF NOT EXISTS rep_t (v int)")
        writer.execute("INSERT INTO rep_t VALUES (1)")
    reader, seconds = add_reader(rds, cluster)
    print(f"add-reader: {seconds:.2f} s")  # CreateDBInstance until a login on the reader succeeded
    assert seconds < 15
    return reader


def test_reader_is_a_streaming_replica(rds: Any, cluster: Db, reader: str, server: Any) -> None:
    with connect_instance(rds, cluster, reader) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        # a real standby, not a read-only default
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
        assert conn.execute("SELECT v FROM rep_t").fetchall() == [(1,)]
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO rep_t VALUES (2)")
        with pytest.raises(errors.FeatureNotSupported, match="during recovery"):
            conn.execute("SET transaction_read_only = off")
    with cluster.connect() as writer:
        writer.execute("INSERT INTO rep_t VALUES (3)")
        assert writer.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        slots = writer.execute("SELECT slot_type, active FROM pg_replication_slots").fetchall()
        assert ("physical", True) in slots
        assert writer.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone() == (1,)

    def replicated() -> bool:
        with connect_instance(rds, cluster, reader) as conn:
            return conn.execute("SELECT count(*) FROM rep_t WHERE v = 3").fetchone() == (1,)

    until(replicated, what="the row written on the writer on the reader")
    # the reader has a server (and a data directory) of its own
    engine = server.data_dir / "engine" / "clusters" / cluster.resource_id
    replicas = [p for p in (engine / "replicas").iterdir() if (p / "pgdata" / "standby.signal").exists()]
    assert len(replicas) == 1
    # no password anywhere on disk for replication
    for name in ("postgresql.auto.conf", "auroral.local.conf"):
        text = (replicas[0] / "pgdata" / name).read_text()
        assert "password" not in text.lower()
    assert "rdsrepladmin" in (replicas[0] / "pgdata" / "auroral.local.conf").read_text()


def test_replication_role_is_reserved(rds: Any, cluster: Db, reader: str) -> None:
    host, port = cluster.host, cluster.port
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=host, port=port, user="rdsrepladmin", password="x", dbname=cluster.database,
                        sslmode="require", connect_timeout=10).close()
    with cluster.connect() as writer:
        with pytest.raises(errors.InsufficientPrivilege):
            writer.execute("ALTER ROLE rdsrepladmin PASSWORD 'Stolen-pass-1'")
        assert writer.execute("SELECT rolreplication, rolcanlogin, rolsuper FROM pg_roles "
                              "WHERE rolname = 'rdsrepladmin'").fetchall() == [(True, True, False)]


def test_replication_role_exists_before_any_reader(rds: Any) -> None:
    db = create_db(rds, prefix="e2e-reprole")
    try:
        with db.connect() as writer:
            # Refused either way: the role exists (DuplicateObject) or, where the auroral_rds module is
            # built, it is reserved to the engine before PostgreSQL looks (InsufficientPrivilege).
            with pytest.raises((errors.DuplicateObject, errors.InsufficientPrivilege)):
                writer.execute("CREATE ROLE rdsrepladmin LOGIN PASSWORD 'Mine-pass-1'")
            assert writer.execute("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'rdsrepladmin'"
                                  ).fetchall() == [(True, False)]
    finally:
        delete_db(rds, db)


def test_describe_shows_writer_and_reader(rds: Any, cluster: Db, reader: str) -> None:
    members = rds.describe_db_clusters(DBClusterIdentifier=cluster.cluster_id)["DBClusters"][0]["DBClusterMembers"]
    writers = [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]
    assert writers == [cluster.instance_id]
    assert len(members) >= 2


def test_deleting_a_reader_removes_its_server_and_slot(rds: Any, server: Any) -> None:
    db = create_db(rds, prefix="e2e-repdel")
    try:
        reader, _ = add_reader(rds, db)
        dbi = rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DbiResourceId"]
        engine: Path = server.data_dir / "engine" / "clusters" / db.resource_id
        assert (engine / "replicas" / dbi / "pgdata").is_dir()
        assert postgres_processes(dbi)
        rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        wait_instance_gone(rds, reader)
        assert not (engine / "replicas" / dbi).exists()
        assert postgres_processes(dbi) == []
        with db.connect() as writer:
            assert writer.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
            writer.execute("CREATE TABLE still_writable (v int)")
    finally:
        delete_db(rds, db)


def writer_of(rds: Any, cluster_id: str) -> list[str]:
    members = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["DBClusterMembers"]
    return [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]


def test_topology_from_every_instance(rds: Any, cluster: Db, reader: str) -> None:
    members = rds.describe_db_clusters(DBClusterIdentifier=cluster.cluster_id)["DBClusters"][0]["DBClusterMembers"]
    readers = sorted(m["DBInstanceIdentifier"] for m in members if not m["IsClusterWriter"])
    assert readers
    for instance in [cluster.instance_id, *readers]:
        with connect_instance(rds, cluster, instance) as conn:
            assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == (instance,)
            rows = conn.execute("SELECT server_id, session_id, replica_lag_in_msec, last_update_timestamp IS NULL "
                                "FROM aurora_replica_status()").fetchall()
            assert rows[0][:2] == (cluster.instance_id, "MASTER_SESSION_ID")
            assert sorted(r[0] for r in rows[1:]) == readers
            for server_id, session, lag, is_me in rows:
                assert is_me == (server_id == instance)
                if server_id != cluster.instance_id:
                    assert session != "MASTER_SESSION_ID" and len(session) == 36 and lag is not None


def test_aws_wrapper_sees_the_topology_from_a_reader(rds: Any, cluster: Db, reader: str) -> None:
    import aws_advanced_python_wrapper as wrapper
    from aws_advanced_python_wrapper.database_dialect import AuroraPgDialect

    members = rds.describe_db_clusters(DBClusterIdentifier=cluster.cluster_id)["DBClusters"][0]["DBClusterMembers"]
    readers = sorted(m["DBInstanceIdentifier"] for m in members if not m["IsClusterWriter"])
    host, port = instance_address(rds, readers[0])
    conn = wrapper.AwsWrapperConnection.connect(
        psycopg.Connection.connect,
        f"host={host} port={port} dbname={cluster.database} user={cluster.master} password={cluster.password} "
        "sslmode=require connect_timeout=10", plugins="", autocommit=True)
    try:
        service = conn._plugin_service
        if not isinstance(service.database_dialect, AuroraPgDialect):
            pytest.skip("the auroral_rds module could not be built on this host (no Aurora dialect)")
        roles = sorted((h.host_id, h.role.name) for h in service.hosts)
        assert roles == sorted([(cluster.instance_id, "WRITER"), *[(r, "READER") for r in readers]])
    finally:
        conn.close()
        wrapper.release_resources()


def test_failover_errors(rds: Any, cluster: Db) -> None:
    lonely = create_db(rds, prefix="e2e-repfo-err")
    try:
        with pytest.raises(rds.exceptions.InvalidDBClusterStateFault):
            rds.failover_db_cluster(DBClusterIdentifier=lonely.cluster_id)
        with pytest.raises(rds.exceptions.InvalidDBInstanceStateFault):
            rds.failover_db_cluster(DBClusterIdentifier=lonely.cluster_id, TargetDBInstanceIdentifier=lonely.instance_id)
        with pytest.raises(rds.exceptions.ClientError) as info:
            # an instance of another cluster
            rds.failover_db_cluster(DBClusterIdentifier=lonely.cluster_id, TargetDBInstanceIdentifier=cluster.instance_id)
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
        with pytest.raises(rds.exceptions.DBInstanceNotFoundFault):
            rds.failover_db_cluster(DBClusterIdentifier=lonely.cluster_id, TargetDBInstanceIdentifier="no-such-instance")
        with pytest.raises(rds.exceptions.DBClusterNotFoundFault):
            rds.failover_db_cluster(DBClusterIdentifier="no-such-cluster")
        assert writer_of(rds, lonely.cluster_id) == [lonely.instance_id]
    finally:
        delete_db(rds, lonely)


def wait_available(rds: Any, cluster_id: str, timeout: float = 60) -> None:
    until(lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"] == "available",
          timeout=timeout, what="the cluster available")


def replicated_on(rds: Any, db: Db, instance: str, query: str, expected: Any, timeout: float = 15) -> None:
    def check() -> bool:
        with connect_instance(rds, db, instance) as conn:
            return conn.execute(query).fetchall() == expected

    until(check, timeout=timeout, what=f"{query} on {instance}")


def test_failover_with_and_without_target(rds: Any) -> None:
    db = create_db(rds, prefix="e2e-repfo")
    readers: list[str] = []
    try:
        best, _ = add_reader(rds, db, tier=0, instance_class="db.r6g.large")
        bigger_but_later, _ = add_reader(rds, db, tier=1, instance_class="db.r6g.4xlarge")
        readers = [best, bigger_but_later]
        with db.connect() as writer:
            writer.execute("CREATE TABLE fo (v text)")
            writer.execute("INSERT INTO fo VALUES ('before')")  # committed just before the failover call
        started = time.monotonic()
        answer = rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id)["DBCluster"]
        assert answer["Status"] in ("failing-over", "available")
        wait_available(rds, db.cluster_id)
        print(f"failover: {time.monotonic() - started:.2f} s")
        assert writer_of(rds, db.cluster_id) == [best]  # tier 0 wins over a larger tier-1 reader
        with connect_instance(rds, db, best) as new_writer:
            assert new_writer.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            assert new_writer.execute("SELECT v FROM fo").fetchall() == [("before",)]
            new_writer.execute("INSERT INTO fo VALUES ('after')")
            status = new_writer.execute("SELECT server_id, session_id FROM aurora_replica_status()").fetchall()
            assert status[0] == (best, "MASTER_SESSION_ID")
        # the cluster endpoint is the new writer's
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        assert cluster["Endpoint"].startswith(f"{db.cluster_id}.cluster-")
        endpoint_follows(rds, db.cluster_id, best)
        # the old writer is a reader of the new one, and so is the other reader
        with connect_instance(rds, db, db.instance_id) as old:
            assert old.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        for instance in (db.instance_id, bigger_but_later):
            replicated_on(rds, db, instance, "SELECT v FROM fo ORDER BY v", [("after",), ("before",)])

        # back, with a target
        started = time.monotonic()
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id, TargetDBInstanceIdentifier=db.instance_id)
        wait_available(rds, db.cluster_id)
        print(f"failover with target: {time.monotonic() - started:.2f} s")
        assert writer_of(rds, db.cluster_id) == [db.instance_id]
        with connect_instance(rds, db, db.instance_id) as writer:
            assert writer.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            writer.execute("INSERT INTO fo VALUES ('again')")
        for instance in readers:
            replicated_on(rds, db, instance, "SELECT count(*) FROM fo", [(3,)])
            with connect_instance(rds, db, instance) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    finally:
        for reader in readers:
            rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        for reader in readers:
            wait_instance_gone(rds, reader)
        delete_db(rds, db)


def cluster_address(rds: Any, cluster_id: str) -> tuple[str, int]:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    return cluster["Endpoint"], cluster["Port"]


def endpoint_follows(rds: Any, cluster_id: str, instance_id: str) -> None:
    """The cluster endpoint's name resolves to the instance's address, on the same port (the hosts block
    is rewritten a moment after the store changes)."""
    name, port = cluster_address(rds, cluster_id)
    address, instance_port = instance_address(rds, instance_id)
    assert port == instance_port
    until(lambda: socket.gethostbyname(name) == socket.gethostbyname(address), timeout=10,
          what=f"{name} to resolve to {instance_id}")


def test_failover_under_write_load_loses_no_committed_row(rds: Any) -> None:
    import threading

    db = create_db(rds, prefix="e2e-repload")
    reader = ""
    try:
        reader, _ = add_reader(rds, db, tier=0)
        with db.connect() as writer:
            writer.execute("CREATE TABLE load (id int PRIMARY KEY)")
        committed: list[int] = []
        stop = threading.Event()
        errors_seen: list[str] = []

        def workload() -> None:
            # as an application does: on a lost connection, look the cluster endpoint up again and reconnect
            next_id = 0
            conn: psycopg.Connection[tuple[Any, ...]] | None = None
            while not stop.is_set():
                try:
                    if conn is None:
                        host, port = cluster_address(rds, db.cluster_id)
                        conn = psycopg.connect(host=host, port=port, user=db.master, password=db.password,
                                               dbname=db.database, sslmode="require", connect_timeout=5,
                                               autocommit=True)
                    next_id += 1
                    conn.execute("INSERT INTO load VALUES (%s)", (next_id,))
                    committed.append(next_id)  # the commit returned: it must survive
                except psycopg.Error as exc:
                    errors_seen.append(type(exc).__name__)
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
            if conn is not None:
                conn.close()

        thread = threading.Thread(target=workload)
        thread.start()
        until(lambda: len(committed) > 50, what="the workload running")
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_available(rds, db.cluster_id)
        assert writer_of(rds, db.cluster_id) == [reader]
        before = len(committed)
        until(lambda: len(committed) > before + 50, timeout=30, what="the workload writing on the new writer")
        stop.set()
        thread.join(30)
        assert errors_seen, "the failover cut no connection"
        with connect_instance(rds, db, reader) as new_writer:
            present = {row[0] for row in new_writer.execute("SELECT id FROM load").fetchall()}
        missing = set(committed) - present
        assert not missing, f"{len(missing)} committed rows lost: {sorted(missing)[:10]}"
    finally:
        if reader:
            rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
            wait_instance_gone(rds, reader)
        delete_db(rds, db)


def test_deleting_the_writer_promotes_a_reader(rds: Any, server: Any) -> None:
    db = create_db(rds, prefix="e2e-repdw")
    reader = ""
    try:
        reader, _ = add_reader(rds, db)
        with db.connect() as writer:
            writer.execute("CREATE TABLE kept (v int)")
            writer.execute("INSERT INTO kept VALUES (42)")
        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        wait_available(rds, db.cluster_id)
        assert writer_of(rds, db.cluster_id) == [reader]
        with connect_instance(rds, db, reader) as new_writer:
            assert new_writer.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            assert new_writer.execute("SELECT v FROM kept").fetchall() == [(42,)]
            new_writer.execute("INSERT INTO kept VALUES (43)")
            rows = new_writer.execute("SELECT server_id, session_id FROM aurora_replica_status()").fetchall()
            assert rows == [(reader, "MASTER_SESSION_ID")]
        # the deleted writer's server (the cluster's first) has no data any more
        first = server.data_dir / "engine" / "clusters" / db.resource_id
        assert not (first / "pgdata").exists()
        assert postgres_processes(str(first / "pgdata")) == []
        # a new reader clones the new writer
        again, _ = add_reader(rds, db)
        replicated_on(rds, db, again, "SELECT count(*) FROM kept", [(2,)])
        rds.delete_db_instance(DBInstanceIdentifier=again, SkipFinalSnapshot=True)
        wait_instance_gone(rds, again)
    finally:
        if reader:
            rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
            wait_instance_gone(rds, reader)
        delete_db(rds, db)


def test_writer_that_dies_fails_over_by_itself(rds: Any, server: Any) -> None:
    import os
    import signal

    from .e2e_helpers import postmaster_pid

    db = create_db(rds, prefix="e2e-repauto")
    reader = ""
    try:
        reader, _ = add_reader(rds, db)
        with db.connect() as writer:
            writer.execute("CREATE TABLE auto (v int)")
            writer.execute("INSERT INTO auto VALUES (1)")
        replicated_on(rds, db, reader, "SELECT v FROM auto", [(1,)])
        pgdata = server.data_dir / "engine" / "clusters" / db.resource_id / "pgdata"
        pid = postmaster_pid(server.data_dir, db.resource_id)
        # the writer's PostgreSQL dies and cannot start again (its control file is gone)
        os.rename(pgdata / "global" / "pg_control", pgdata / "global" / "pg_control.moved")
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        seen: list[str] = []

        def promoted() -> bool:
            cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
            if not seen or seen[-1] != cluster["Status"]:
                seen.append(cluster["Status"])
            return cluster["Status"] == "available" and writer_of(rds, db.cluster_id) == [reader]

        until(promoted, timeout=60, what="the automatic failover")
        print(f"automatic failover: {time.monotonic() - started:.2f} s after the kill; statuses {seen}")
        assert "failing-over" in seen
        with connect_instance(rds, db, reader) as new_writer:
            assert new_writer.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            new_writer.execute("INSERT INTO auto VALUES (2)")
        # the old writer rejoined as a reader (cloned afresh: it could not follow)
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0][
            "DBInstanceStatus"] == "available", timeout=60, what="the old writer available again")
        replicated_on(rds, db, db.instance_id, "SELECT v FROM auto ORDER BY v", [(1,), (2,)], timeout=30)
        with connect_instance(rds, db, db.instance_id) as old:
            assert old.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    finally:
        if reader:
            with contextlib.suppress(Exception):
                rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
                wait_instance_gone(rds, reader)
        delete_db(rds, db)


def test_parameters_and_stop_start_reach_every_server(rds: Any) -> None:
    group = ident("e2e-rep-pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="replicas")
    db = create_db(rds, prefix="e2e-repss", DBClusterParameterGroupName=group)
    reader = ""
    try:
        reader, _ = add_reader(rds, db)
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "statement_timeout", "ParameterValue": "4321", "ApplyMethod": "immediate"}])
        for instance in (db.instance_id, reader):
            def applied(i: str = instance) -> bool:
                with connect_instance(rds, db, i) as conn:
                    return conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
            until(applied, what=f"statement_timeout on {instance}")
        dbi = rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DbiResourceId"]
        rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)
        until(lambda: rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"]
              == "stopped", timeout=60, what="stopped")
        assert postgres_processes(db.resource_id) == []
        assert postgres_processes(dbi) == []
        rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_available(rds, db.cluster_id)
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DBInstanceStatus"]
              == "available", timeout=60, what="the reader available")
        with db.connect() as writer:
            writer.execute("CREATE TABLE after_start (v int)")
            writer.execute("INSERT INTO after_start VALUES (7)")
        replicated_on(rds, db, reader, "SELECT v FROM after_start", [(7,)])
        with connect_instance(rds, db, reader) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
        # a reader's reboot restarts its own server (the writer's sessions stay)
        with db.connect() as writer:
            writer_pid = writer.execute("SELECT pg_backend_pid()").fetchone()
            reader_pid = postgres_processes(dbi)
            rds.reboot_db_instance(DBInstanceIdentifier=reader)
            until(lambda: rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0][
                "DBInstanceStatus"] == "available", timeout=60, what="the reader rebooted")
            assert writer.execute("SELECT pg_backend_pid()").fetchone() == writer_pid
            writer.execute("INSERT INTO after_start VALUES (8)")
        assert not set(reader_pid) & set(postgres_processes(dbi))
        replicated_on(rds, db, reader, "SELECT count(*) FROM after_start", [(2,)])
    finally:
        if reader:
            rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
            wait_instance_gone(rds, reader)
        delete_db(rds, db)
        with contextlib.suppress(Exception):
            rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group)


def test_reader_deleted_while_stopped_leaves_no_slot(rds: Any, server: Any) -> None:
    db = create_db(rds, prefix="e2e-repslot")
    try:
        reader, _ = add_reader(rds, db)
        dbi = rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DbiResourceId"]
        rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)
        until(lambda: rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"]
              == "stopped", timeout=60, what="stopped")
        rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
        wait_instance_gone(rds, reader)
        assert not (server.data_dir / "engine" / "clusters" / db.resource_id / "replicas" / dbi).exists()
        rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_available(rds, db.cluster_id)
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0][
            "DBInstanceStatus"] == "available", timeout=60, what="the writer available")
        with db.connect() as writer:
            assert writer.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
            rows = writer.execute("SELECT server_id FROM aurora_replica_status()").fetchall()
            assert rows == [(db.instance_id,)]
    finally:
        delete_db(rds, db)


def test_writer_deleted_while_stopped_hands_over_at_start(rds: Any, server: Any) -> None:
    db = create_db(rds, prefix="e2e-repdws")
    reader = ""
    try:
        reader, _ = add_reader(rds, db)
        with db.connect() as writer:
            writer.execute("CREATE TABLE kept (v int)")
            writer.execute("INSERT INTO kept VALUES (1)")
        rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)
        until(lambda: rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"]
              == "stopped", timeout=60, what="stopped")
        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        assert writer_of(rds, db.cluster_id) == [reader]
        rds.start_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_available(rds, db.cluster_id)
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0][
            "DBInstanceStatus"] == "available", timeout=60, what="the new writer available")
        endpoint_follows(rds, db.cluster_id, reader)
        with connect_instance(rds, db, reader) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            conn.execute("INSERT INTO kept VALUES (2)")
        first = server.data_dir / "engine" / "clusters" / db.resource_id
        assert not (first / "pgdata").exists()
    finally:
        if reader:
            rds.delete_db_instance(DBInstanceIdentifier=reader, SkipFinalSnapshot=True)
            wait_instance_gone(rds, reader)
        delete_db(rds, db)
