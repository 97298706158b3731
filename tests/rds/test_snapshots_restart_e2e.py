"""Snapshots and encrypted clusters across restarts of auroral: a kill -9 after a snapshot's record was
written (before its backup) or while its sealed file is being written leaves a snapshot that the next
start takes again (no half file left); a cluster whose KMS key is disabled stays
inaccessible-encryption-credentials across a restart and serves again once the key is enabled."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auroral.rds.managed_password import CRASH_ENV
from tests.conftest import Server, new_root_key, server_tmpdir, start_server, stop_server

from .e2e_helpers import FAST, Db, create_db, ident, postgres_processes, until
from .test_snapshots_e2e import restore, rows

ACCOUNT = "123456789012"


@dataclass
class Home:
    base: Path
    key: str
    secret: str
    port: int = 0

    def start(self, **env: str) -> Server:
        srv = start_server(self.base / "data", access_key=self.key, secret_key=self.secret, account=ACCOUNT,
                           port=self.port or None, extra_env={"AURORAL_KMS_CHECK_SECONDS": "1", **env})
        self.port = int(srv.url.rsplit(":", 1)[1])
        return srv


@pytest.fixture
def home() -> Iterator[Home]:
    key, secret = new_root_key()
    base = server_tmpdir()
    yield Home(base, key, secret)
    for pid in postgres_processes(str(base)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def _dead(srv: Server) -> None:
    assert srv.proc is not None
    srv.proc.wait(timeout=60)
    assert srv.proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("crash_at", ["snapshot:recorded", "snapshot:streaming"])
def test_kill_during_a_snapshot_the_restart_takes_it(home: Home, crash_at: str) -> None:
    srv = home.start(**{CRASH_ENV: crash_at})
    rds = srv.client("rds")
    db = create_db(rds, prefix="snapcrash")
    with db.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) SELECT 'row-' || g FROM generate_series(1, 3) g")
        conn.execute("CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g")
    sid = ident("snapcrash-s")
    with contextlib.suppress(Exception):
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=sid, DBClusterIdentifier=db.cluster_id)
    _dead(srv)
    store = home.base / "data" / "snapshots"
    if crash_at == "snapshot:streaming":
        assert any(p.name.endswith(".partial") for p in store.iterdir())
    srv = home.start()
    try:
        rds = srv.client("rds")
        rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=sid, WaiterConfig=FAST)
        assert not any(p.name.endswith(".partial") for p in store.iterdir())
        restored = restore(rds, sid)
        assert rows(restored) == ["row-1", "row-2", "row-3"]
    finally:
        stop_server(srv)


def test_kill_during_a_copy_the_restart_finishes_it(home: Home) -> None:
    srv = home.start(**{CRASH_ENV: "copy:recorded"})
    rds = srv.client("rds")
    db = create_db(rds, prefix="copycrash")
    with db.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('copied')")
    sid, copy = ident("copycrash-s"), ident("copycrash-c")
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=sid, DBClusterIdentifier=db.cluster_id)
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=sid, WaiterConfig=FAST)
    with contextlib.suppress(Exception):
        rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=sid, TargetDBClusterSnapshotIdentifier=copy)
    _dead(srv)
    srv = home.start()
    try:
        rds = srv.client("rds")
        rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=copy, WaiterConfig=FAST)
        restored = restore(rds, copy)
        assert rows(restored) == ["copied"]
    finally:
        stop_server(srv)


def test_a_disabled_key_holds_across_a_restart(home: Home) -> None:
    srv = home.start()
    rds, kms = srv.client("rds"), srv.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    db: Db = create_db(rds, prefix="enccrash", KmsKeyId=key)
    with db.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('kept')")

    def status(client: Any) -> str:
        return str(client.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"])

    kms.disable_key(KeyId=key)
    until(lambda: status(rds) == "inaccessible-encryption-credentials", timeout=30, what="inaccessible")
    stop_server(srv)
    srv = home.start()
    try:
        rds, kms = srv.client("rds"), srv.client("kms")
        time.sleep(3)
        assert status(rds) == "inaccessible-encryption-credentials"
        kms.enable_key(KeyId=key)
        until(lambda: status(rds) == "available", timeout=60, what="available again")
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        until(lambda: rows(db) == ["kept"], timeout=30, what="the rows")
    finally:
        stop_server(srv)
