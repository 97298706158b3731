"""Server lifecycle on real PostgreSQL: stop/start, supervision after kill -9, delete, recovery."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from auroral.engine import Installation, LocalEngine, ParameterError, PgServer, postmaster, proc

from .conftest import (
    ADMIN_PASSWORD,
    MASTER,
    MASTER_PASSWORD,
    Events,
    connect,
    newest_installation_only,
    processes_under,
    wait_status,
)

# supervision, stop/start, delete and recovery are auroral's process handling, the same for every major:
# on the newest one only (every major is created, started and restarted by the other engine modules, and
# served end to end by tests/rds/test_engine_majors_e2e.py)
installation = newest_installation_only()


def test_stop_start_keeps_data(server: PgServer, runner: asyncio.Runner) -> None:
    with connect(server) as conn:
        conn.execute("CREATE TABLE durable (v text)")
        conn.execute("INSERT INTO durable VALUES ('kept')")
    old_pid = server.pid
    runner.run(server.stop())
    assert server.status() == "stopped" and server.pid is None
    assert old_pid is not None and not proc.alive(old_pid)
    assert proc.processes_in(server.pgdata) == []
    runner.run(server.start())
    assert server.status() == "running"
    with connect(server) as conn:
        assert conn.execute("SELECT v FROM durable").fetchall() == [("kept",)]
        conn.execute("DROP TABLE durable")


def test_kill9_is_noticed_and_restarted(server: PgServer, runner: asyncio.Runner, events: Events) -> None:
    with connect(server) as conn:
        conn.execute("CREATE TABLE survives_crash AS SELECT 42 AS v")
    pid = server.pid
    assert pid is not None
    seen = len(events)
    os.kill(pid, signal.SIGKILL)
    runner.run(wait_status(server, "running", until=lambda: server.pid not in (None, pid)))
    mine = [status for cid, status, _ in events[seen:] if cid == server.cluster_id]
    assert mine[0] == "failed" and mine[-1] == "running"
    failure = next(reason for cid, status, reason in events[seen:] if cid == server.cluster_id)
    assert "exited unexpectedly with code -9" in failure
    with connect(server) as conn:
        assert conn.execute("SELECT v FROM survives_crash").fetchall() == [(42,)]
        conn.execute("DROP TABLE survives_crash")


def test_clean_stop_does_not_restart(server: PgServer, runner: asyncio.Runner) -> None:
    runner.run(server.stop())
    runner.run(asyncio.sleep(0.5))  # give a (wrong) supervisor a chance
    assert server.status() == "stopped" and server.pid is None
    runner.run(server.start())


def test_set_parameters(server: PgServer, runner: asyncio.Runner) -> None:
    change = runner.run(server.set_parameters({"log_connections": "on", "shared_buffers": "24MB",
                                              "rds.force_ssl": "1"}))
    assert change.applied == ["log_connections", "rds.force_ssl"]
    assert change.pending_reboot == ["shared_buffers"]
    with connect(server) as conn:
        assert conn.execute("SHOW shared_buffers").fetchone() == ("16MB",)
        assert conn.execute("SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'"
                            ).fetchone() == (True,)
    with pytest.raises(ParameterError):
        runner.run(server.set_parameters({"work_mem": "lots"}))
    with pytest.raises(ParameterError):
        runner.run(server.set_parameters({"listen_addresses": "*"}))
    assert server.parameters() == {"log_connections": "on", "rds.force_ssl": "1", "shared_buffers": "24MB"}
    runner.run(server.restart())
    with connect(server) as conn:
        assert conn.execute("SHOW shared_buffers").fetchone() == ("24MB",)
    runner.run(server.set_parameters({"log_connections": None, "shared_buffers": None, "rds.force_ssl": None}))
    runner.run(server.restart())
    assert server.parameters() == {}


def test_delete_leaves_nothing(engine: LocalEngine, runner: asyncio.Runner, installation: Installation) -> None:
    cluster_id = f"cluster-delete-pg{installation.major}"
    srv = runner.run(engine.create_server(cluster_id, f"{installation.major}.2", admin_password=ADMIN_PASSWORD,
                                          master_username=MASTER, master_password=MASTER_PASSWORD))
    open_conn = connect(srv, dbname="postgres")  # a client still connected during delete
    assert processes_under(srv.cluster_dir)
    runner.run(engine.delete_server(cluster_id))
    open_conn.close()
    assert processes_under(srv.cluster_dir) == []
    assert not srv.cluster_dir.exists()
    assert srv.status() == "not-initialized"


def test_recover_stops_orphans_and_finishes_deletes(
    engine: LocalEngine, runner: asyncio.Runner, installation: Installation
) -> None:
    major = installation.major
    known_id, unknown_id, deleting_id = (f"cluster-{n}-pg{major}" for n in ("known", "unknown", "deleting"))
    for cid in (known_id, unknown_id, deleting_id):
        runner.run(engine.create_server(cid, str(major), admin_password=ADMIN_PASSWORD,
                                        master_username=MASTER, master_password=MASTER_PASSWORD))
        runner.run(engine.get_server(cid).stop())
    # simulate postmasters that survived a killed auroral: started by someone else, not our children
    orphans = {cid: _foreign_postmaster(engine.get_server(cid)) for cid in (known_id, unknown_id)}
    (engine.clusters_dir / deleting_id / ".deleting").touch()

    fresh = LocalEngine(engine.data_dir, installations=[installation], runas=engine.runas)
    try:
        report = runner.run(fresh.recover({known_id: ADMIN_PASSWORD, "cluster-gone": "x"}))
        for orphan in orphans.values():
            assert orphan.wait(timeout=10) == 0  # fast shutdown by recover
        assert known_id in report.started and known_id in report.adopted_orphans
        assert unknown_id in report.unknown and unknown_id in report.adopted_orphans
        assert deleting_id in report.deleted and not (engine.clusters_dir / deleting_id).exists()
        assert report.missing == ["cluster-gone"]
        recovered = fresh.get_server(known_id)
        assert recovered.status() == "running"
        assert recovered.runas == engine.get_server(known_id).runas  # the cluster's own OS user again
        with connect(recovered, dbname="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert proc.postmaster_of(engine.get_server(unknown_id).pgdata) is None
    finally:
        runner.run(fresh.close())
        for orphan in orphans.values():
            if orphan.poll() is None:
                orphan.kill()
                orphan.wait()
    for cid in (known_id, unknown_id, deleting_id):
        if cid != deleting_id:
            runner.run(engine.delete_server(cid))
        else:
            engine._servers.pop(cid, None)


def _foreign_postmaster(server: PgServer) -> subprocess.Popen[bytes]:
    from auroral.engine import conf

    conf.write(server.pgdata / conf.LOCAL_FILE, conf.local_conf(server.socket_dir, server.cluster_id), server.runas)
    child = subprocess.Popen(
        [str(server.installation.tool("postgres")), "-D", str(server.pgdata)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd="/",
        **server.runas.subprocess_kwargs(),
    )
    deadline = time.monotonic() + 30
    while proc.postmaster_of(server.pgdata) != child.pid:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    return child


def test_clone_versus_initdb_and_idle_memory(
    engine: LocalEngine, runner: asyncio.Runner, installation: Installation
) -> None:
    """Prints timings and memory; asserts nothing about time."""
    inst = engine.installation(str(installation.major))
    runner.run(engine.templates.ensure(inst))
    cluster_id = f"cluster-timing-pg{installation.major}"
    started = time.perf_counter()
    srv = runner.run(engine.create_server(cluster_id, str(installation.major), admin_password=ADMIN_PASSWORD,
                                          master_username=MASTER, master_password=MASTER_PASSWORD,
                                          database_name="app"))
    clone_seconds = time.perf_counter() - started

    scratch = engine.root / f"initdb-scratch-{installation.major}"
    os.makedirs(scratch, mode=0o700)
    engine.runas.chown(scratch)
    try:
        started = time.perf_counter()
        initdb_seconds = runner.run(_initdb_and_start(inst, engine, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    runner.run(asyncio.sleep(1.0))  # let background workers settle
    pids = [srv.pid or 0, *proc.children(srv.pid or 0)]
    rss = sum(proc.memory_kib(p)[0] for p in pids)
    pss = sum(proc.memory_kib(p)[1] for p in pids)
    print(
        f"\nPG{installation.major}: create from template (clone+fsync+start+bootstrap) {clone_seconds:.2f}s; "
        f"initdb+start {initdb_seconds:.2f}s; idle: {len(pids)} processes, postmaster RSS "
        f"{proc.memory_kib(pids[0])[0] / 1024:.1f} MiB, sum RSS {rss / 1024:.1f} MiB, sum PSS {pss / 1024:.1f} MiB"
    )
    runner.run(engine.delete_server(cluster_id))


async def _initdb_and_start(inst: Installation, engine: LocalEngine, scratch: Path) -> float:
    from auroral.engine import conf

    started = time.perf_counter()
    pgdata = scratch / "pgdata"
    await postmaster.initdb(inst, pgdata, engine.runas)
    await postmaster.sync(inst, pgdata, engine.runas)  # initdb --no-sync + sync = plain initdb
    socket_dir = postmaster.socket_dir_for(scratch)
    os.makedirs(socket_dir, mode=0o700)
    engine.runas.chown(socket_dir)
    with open(pgdata / "postgresql.conf", "a") as handle:
        handle.write(conf.base_conf(inst.major) + conf.local_conf(socket_dir, "scratch"))
    conf.write(pgdata / "pg_hba.conf", conf.hba_conf("bootstrap"), engine.runas)
    process = await postmaster.launch(inst, pgdata, engine.runas, scratch / "log")

    async def check() -> None:
        async with await postmaster.connect(socket_dir, None):
            pass

    try:
        await postmaster.wait_ready(process, pgdata, socket_dir, scratch / "log", check)
        return time.perf_counter() - started
    finally:
        await postmaster.shutdown(process)
