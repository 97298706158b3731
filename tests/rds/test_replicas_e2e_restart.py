"""A cluster with readers survives restarts of auroral with its topology: after a failover, a clean stop
and a kill -9 of auroral, the same instance is the writer (not in recovery), the others are its
streaming replicas, and writes still reach them. A failover interrupted by a crash of auroral is
finished at the next start from what the servers' control files say (the one not in recovery is the
writer), whether or not the promotion had happened."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from auroral.store import Store
from tests.conftest import new_root_key, start_server, stop_server

from .e2e_helpers import Db, create_db, postgres_processes, until, wait_status
from .test_replicas_e2e import add_reader, connect_instance, replicated_on, wait_available, writer_of

ACCOUNT = "333344445555"


def check_topology(rds: Any, db: Db, writer: str, readers: list[str], table: str, rows: int) -> None:
    assert writer_of(rds, db.cluster_id) == [writer]
    with until(lambda: connect_instance(rds, db, writer), what=f"login to {writer}") as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        status = conn.execute("SELECT server_id, session_id FROM aurora_replica_status()").fetchall()
        assert status[0] == (writer, "MASTER_SESSION_ID")
        assert sorted(r[0] for r in status[1:]) == sorted(readers)
    for reader in readers:
        with until(lambda r=reader: connect_instance(rds, db, r), what=f"login to {reader}") as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SELECT aurora_db_instance_identifier()").fetchone() == (reader,)
        replicated_on(rds, db, reader, f"SELECT count(*) FROM {table}", [(rows,)], timeout=30)


def test_restarts_keep_the_topology(base: Path) -> None:
    key, secret = new_root_key()
    data = base / "data"
    srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT)
    try:
        rds = srv.client("rds")
        db = create_db(rds, prefix="e2e-reprst")
        reader, _ = add_reader(rds, db, tier=0)
        with db.connect() as conn:
            conn.execute("CREATE TABLE r (v int)")
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id)
        wait_available(rds, db.cluster_id)
        check_topology(rds, db, reader, [db.instance_id], "r", 1)
        port = int(srv.url.rsplit(":", 1)[1])

        # 1. a clean stop and a start
        stop_server(srv)
        assert postgres_processes(str(data)) == []
        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=port)
        rds = srv.client("rds")
        wait_status(rds, db.cluster_id, "available", timeout=60)
        check_topology(rds, db, reader, [db.instance_id], "r", 2)

        # 2. kill -9 of auroral: the servers it left running are adopted
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=port)
        rds = srv.client("rds")
        wait_status(rds, db.cluster_id, "available", timeout=60)
        check_topology(rds, db, reader, [db.instance_id], "r", 3)

        # 3. a failover interrupted after the promotion, before anything was recorded: the layout still
        #    names the old primary and the flags the old writer; the promoted server's control file wins
        cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
        rds.failover_db_cluster(DBClusterIdentifier=db.cluster_id, TargetDBInstanceIdentifier=db.instance_id)
        wait_available(rds, db.cluster_id)
        stop_server(srv)
        _rewind_records(data, db, cluster["DbClusterResourceId"], new_writer=db.instance_id, old_writer=reader)
        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=port)
        rds = srv.client("rds")
        wait_status(rds, db.cluster_id, "available", timeout=60)
        until(lambda: writer_of(rds, db.cluster_id) == [db.instance_id], what="the writer flags reconciled")
        check_topology(rds, db, db.instance_id, [reader], "r", 4)

        # 4. a failover interrupted before the promotion: the old writer stays the writer
        stop_server(srv)
        _mark_failover(data, db, cluster["DbClusterResourceId"], target_instance=reader)
        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=port)
        rds = srv.client("rds")
        wait_status(rds, db.cluster_id, "available", timeout=60)
        check_topology(rds, db, db.instance_id, [reader], "r", 5)
    finally:
        stop_server(srv)
    assert postgres_processes(str(data)) == []


def _layout(store: Store, rid: str) -> dict[str, Any]:
    doc = store.get("rds-servers", ACCOUNT, rid)
    assert doc is not None
    return doc


def _rewind_records(data: Path, db: Db, rid: str, *, new_writer: str, old_writer: str) -> None:
    """What the store held had auroral died right after ``pg_promote``: the failover marker, the old
    primary in the layout, the old writer flagged."""
    store = Store(data / "auroral.sqlite3")
    try:
        layout = _layout(store, rid)
        ids = {i["identifier"]: i for _, _, i in store.list("rds.instance", ACCOUNT)}
        new_sid = layout["instances"][ids[new_writer]["resource_id"]]
        old_sid = layout["instances"][ids[old_writer]["resource_id"]]
        assert layout["primary"] == new_sid
        layout.update(primary=old_sid, failover={"target": new_sid, "old": old_sid})
        store.put("rds-servers", ACCOUNT, rid, layout)
        for name, flag in ((new_writer, False), (old_writer, True)):
            store.put("rds.instance", ACCOUNT, name, {**ids[name], "is_writer": flag})
        cluster = store.get("rds.cluster", ACCOUNT, db.cluster_id)
        assert cluster is not None
        store.put("rds.cluster", ACCOUNT, db.cluster_id, {**cluster, "status": "failing-over"})
    finally:
        store.close()


def _mark_failover(data: Path, db: Db, rid: str, *, target_instance: str) -> None:
    """What the store held had auroral died after recording the failover, before acting."""
    store = Store(data / "auroral.sqlite3")
    try:
        layout = _layout(store, rid)
        ids = {i["identifier"]: i for _, _, i in store.list("rds.instance", ACCOUNT)}
        target = layout["instances"][ids[target_instance]["resource_id"]]
        layout["failover"] = {"target": target, "old": layout["primary"]}
        store.put("rds-servers", ACCOUNT, rid, layout)
    finally:
        store.close()


def test_a_crashed_writer_is_rewound_into_a_reader(base: Path) -> None:
    """With no restart attempts (``AURORAL_RESTART_ATTEMPTS=0``) a killed writer stays down: a reader takes
    over after 3 s, and the old writer, whose data is intact but which crashed (it may hold WAL the new
    writer never got), comes back as a reader through pg_rewind, not a fresh clone."""
    import os
    import time

    from .e2e_helpers import postmaster_pid

    key, secret = new_root_key()
    data = base / "data"
    srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT,
                       extra_env={"AURORAL_RESTART_ATTEMPTS": "0"})
    try:
        rds = srv.client("rds")
        db = create_db(rds, prefix="e2e-reprew")
        reader, _ = add_reader(rds, db)
        with db.connect() as conn:
            conn.execute("CREATE TABLE r (v int)")
            conn.execute("INSERT INTO r VALUES (1)")
        replicated_on(rds, db, reader, "SELECT count(*) FROM r", [(1,)])
        os.kill(postmaster_pid(data, db.resource_id), signal.SIGKILL)
        started = time.monotonic()
        until(lambda: writer_of(rds, db.cluster_id) == [reader] and rds.describe_db_clusters(
            DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"] == "available", timeout=60,
            what="the automatic failover")
        print(f"automatic failover (rewind): {time.monotonic() - started:.2f} s")
        until(lambda: rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0][
            "DBInstanceStatus"] == "available", timeout=60, what="the old writer back")
        check_topology(rds, db, reader, [db.instance_id], "r", 2)
        assert srv.log_path is not None
        log = srv.log_path.read_text(errors="replace")
        assert "(rewound)" in log and "cloning server" not in log
    finally:
        stop_server(srv)
    assert postgres_processes(str(data)) == []
