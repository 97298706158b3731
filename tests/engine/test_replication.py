"""Physical streaming replication between the servers of one cluster: a replica cloned with
pg_basebackup over the primary's private socket (peer, as ``rdsrepladmin``: no password anywhere),
a hot standby that sees the primary's writes; a switchover without loss (clean stop, replay past the
shutdown checkpoint, promotion, the old primary following the new one); and recovery after a restart
of auroral that removes a half-made clone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from auroral.engine import Installation, LocalEngine, PgServer, Standby, lsn_value
from auroral.engine.cluster import CLONING_MARKER

from .conftest import ADMIN_PASSWORD, MASTER, MASTER_PASSWORD


def _wait(runner: asyncio.Runner, check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (psycopg.Error, AssertionError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached (last: {last!r})")


def _rows(runner: asyncio.Runner, server: PgServer, query: str) -> list[tuple[Any, ...]]:
    return runner.run(server.run_admin_sql(query))


def test_replica_streams_and_switches_over(engine: LocalEngine, runner: asyncio.Runner,
                                           installation: Installation) -> None:
    major = installation.major
    cid, rid = f"cluster-repl-pg{major}", f"db-repl-pg{major}"
    primary = runner.run(engine.create_server(cid, str(major), admin_password=ADMIN_PASSWORD, master_username=MASTER,
                                              master_password=MASTER_PASSWORD))
    try:
        _rows(runner, primary, "CREATE TABLE t (v int)")
        _rows(runner, primary, "INSERT INTO t VALUES (1)")
        started = time.monotonic()
        replica = runner.run(engine.create_replica(cid, rid, primary, "auroral_r"))
        elapsed = time.monotonic() - started
        print(f"create_replica pg{major}: {elapsed:.2f} s")
        assert elapsed < 10
        assert replica.runas == primary.runas and replica.cluster_dir.parent.parent == primary.cluster_dir
        assert not (replica.cluster_dir / CLONING_MARKER).exists()
        assert runner.run(replica.wal_position()).in_recovery
        assert _rows(runner, replica, "SELECT v FROM t") == [(1,)]
        _rows(runner, primary, "INSERT INTO t VALUES (2)")
        _wait(runner, lambda: _rows(runner, replica, "SELECT count(*) FROM t") == [(2,)], "streaming")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            _rows(runner, replica, "INSERT INTO t VALUES (3)")
        assert engine.servers_of(cid) == [primary, replica]

        # switchover: nothing committed on the old primary is lost
        _rows(runner, primary, "INSERT INTO t VALUES (3)")
        runner.run(primary.stop())
        control = runner.run(primary.control_data())
        assert control["Database cluster state"] == "shut down"
        checkpoint = lsn_value(control["Latest checkpoint location"])
        _wait(runner, lambda: lsn_value(runner.run(replica.wal_position()).replayed or "0/0") > checkpoint,
              "the replica past the shutdown checkpoint")
        runner.run(replica.promote())
        assert not runner.run(replica.wal_position()).in_recovery
        assert _rows(runner, replica, "SELECT count(*) FROM t") == [(3,)]
        _rows(runner, replica, "INSERT INTO t VALUES (4)")
        runner.run(replica.ensure_slot("auroral_p"))
        runner.run(primary.follow(Standby(replica.socket_dir, "auroral_p")))
        runner.run(primary.start())
        assert runner.run(primary.wal_position()).in_recovery
        _wait(runner, lambda: _rows(runner, primary, "SELECT count(*) FROM t") == [(4,)], "the old primary following")
        runner.run(replica.drop_slot("auroral_p"))
    finally:
        runner.run(engine.delete_server(cid))
    assert not primary.cluster_dir.exists()


def test_a_half_made_clone_is_removed_at_recovery(engine: LocalEngine, runner: asyncio.Runner,
                                                  installation: Installation) -> None:
    major = installation.major
    cid, rid = f"cluster-replrec-pg{major}", f"db-replrec-pg{major}"
    primary = runner.run(engine.create_server(cid, str(major), admin_password=ADMIN_PASSWORD, master_username=MASTER,
                                              master_password=MASTER_PASSWORD))
    fresh = LocalEngine(engine.data_dir, installations=[installation], runas=engine.runas)
    try:
        replica = runner.run(engine.create_replica(cid, rid, primary, "auroral_x"))
        runner.run(replica.stop())
        runner.run(primary.stop())
        (replica.cluster_dir / CLONING_MARKER).touch()  # as if auroral died during pg_basebackup
        report = runner.run(fresh.recover({cid: ADMIN_PASSWORD}, start=False))
        assert rid in report.deleted and not replica.cluster_dir.exists()
        assert [s.server_id for s in fresh.servers_of(cid)] == [cid]
    finally:
        runner.run(fresh.close())
        engine._servers.pop(rid, None)
        runner.run(engine.delete_server(cid))


def test_a_crashed_primary_that_diverged_is_rewound(engine: LocalEngine, runner: asyncio.Runner,
                                                    installation: Installation) -> None:
    """The primary wrote WAL its standby never received, then crashed; the standby was promoted and
    wrote on. pg_rewind brings the former primary onto the new timeline: it follows the new primary and
    the rows only it had are gone (they were never acknowledged to the standby)."""
    import os
    import signal

    major = installation.major
    cid, rid = f"cluster-rewind-pg{major}", f"db-rewind-pg{major}"
    primary = runner.run(engine.create_server(cid, str(major), admin_password=ADMIN_PASSWORD, master_username=MASTER,
                                              master_password=MASTER_PASSWORD))
    try:
        _rows(runner, primary, "CREATE TABLE t (v int)")
        replica = runner.run(engine.create_replica(cid, rid, primary, "auroral_r"))
        _rows(runner, primary, "INSERT INTO t VALUES (1)")
        _wait(runner, lambda: _rows(runner, replica, "SELECT count(*) FROM t") == [(1,)], "streaming")
        runner.run(replica.stop())
        _rows(runner, primary, "INSERT INTO t SELECT generate_series(100, 200)")  # only the primary has these
        pid = primary.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the loop is not running: the supervisor sees it only inside stop()
        runner.run(primary.stop())
        assert runner.run(primary.control_data())["Database cluster state"] == "in production"  # a crash
        runner.run(replica.start())
        runner.run(replica.promote())  # a new timeline: the former primary's WAL beyond the fork diverges
        _rows(runner, replica, "INSERT INTO t VALUES (2)")
        _rows(runner, replica, "CHECKPOINT")
        runner.run(replica.ensure_slot("auroral_p"))
        runner.run(primary.rewind(replica))
        runner.run(primary.follow(Standby(replica.socket_dir, "auroral_p")))
        runner.run(primary.start())
        assert runner.run(primary.wal_position()).in_recovery
        _wait(runner, lambda: _rows(runner, primary, "SELECT v FROM t ORDER BY v") == [(1,), (2,)], "rewound")
        runner.run(replica.drop_slot("auroral_p"))
    finally:
        runner.run(engine.delete_server(cid))
