"""Snapshot, restore and point-in-time restore on every PostgreSQL major auroral serves here (14-18, the
fetched builds included): pg_basebackup's tar, the restore's archive recovery and the WAL archive work the
same on each."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from .e2e_helpers import create_db, delete_db, served_engine_versions
from .test_pitr_e2e import notes, restore_to
from .test_snapshots_e2e import restore, snapshot


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.mark.parametrize(("engine_version", "major"), served_engine_versions())
def test_snapshot_restore_and_pitr_on_every_major(rds: Any, engine_version: str, major: int) -> None:
    db = create_db(rds, prefix=f"snapmaj{major}", engine_version=engine_version)
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO notes (note) VALUES ('base')")
            assert conn.execute("SHOW server_version_num").fetchone()[0].startswith(str(major))
        snap = snapshot(rds, db.cluster_id)
        with db.connect() as conn:
            conn.execute("INSERT INTO notes (note) VALUES ('wal')")
        time.sleep(1.2)
        moment = datetime.now(UTC)
        time.sleep(1.2)
        with db.connect() as conn:
            conn.execute("DELETE FROM notes")
        restored = restore(rds, snap["DBClusterSnapshotIdentifier"])
        try:
            assert notes(restored) == ["base"]
        finally:
            delete_db(rds, restored)
        pitr = restore_to(rds, db, RestoreToTime=moment)
        try:
            assert notes(pitr) == ["base", "wal"]
        finally:
            delete_db(rds, pitr)
    finally:
        delete_db(rds, db)
