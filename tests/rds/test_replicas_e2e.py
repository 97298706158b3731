"""Readers are real streaming replicas: each reader instance has a PostgreSQL server of its own, a hot
standby of the writer's (pg_basebackup + a physical slot on the writer, peer authentication over the
private socket as ``rdsrepladmin``, no password on disk), reached through its own endpoint. Writes on
the writer appear on the reader; the reader refuses writes; deleting it removes its server and slot."""

from __future__ import annotations

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


def test_reader_is_a_streaming_replica(rds: Any, cluster: Db, server: Any) -> None:
    with cluster.connect() as writer:
        writer.execute("CREATE TABLE IF NOT EXISTS rep_t (v int)")
        writer.execute("INSERT INTO rep_t VALUES (1)")
    reader, seconds = add_reader(rds, cluster)
    print(f"add-reader: {seconds:.2f} s")
    assert seconds < 15
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


def test_replication_role_is_reserved(rds: Any, cluster: Db) -> None:
    host, port = cluster.host, cluster.port
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=host, port=port, user="rdsrepladmin", password="x", dbname=cluster.database,
                        sslmode="require", connect_timeout=10).close()
    with cluster.connect() as writer:
        with pytest.raises(errors.InsufficientPrivilege):
            writer.execute("ALTER ROLE rdsrepladmin PASSWORD 'Stolen-pass-1'")
        assert writer.execute("SELECT rolreplication, rolcanlogin, rolsuper FROM pg_roles "
                              "WHERE rolname = 'rdsrepladmin'").fetchall() == [(True, True, False)]


def test_describe_shows_writer_and_reader(rds: Any, cluster: Db) -> None:
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
