"""auroral restarts on the same data directory: after a clean stop (SIGTERM) and after kill -9 of
auroral itself, every cluster comes back at the same Endpoint/Port with its data, and no PostgreSQL
process is left over (a clean stop stops them; a crash leaves them running until the next start
adopts and restarts them)."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from tests.conftest import new_root_key, start_server, stop_server

from .e2e_helpers import create_db, postgres_processes, postmaster_pid, until, wait_status

ACCOUNT = "222233334444"




def test_restart_keeps_clusters(base: Path) -> None:
    key, secret = new_root_key()
    data = base / "data"
    srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT)
    try:
        rds = srv.client("rds")
        db = create_db(rds, prefix="e2e-restart")
        stopped = create_db(rds, prefix="e2e-restart-stopped")
        with db.connect() as conn:
            conn.execute("CREATE TABLE survives (v text)")
            conn.execute("INSERT INTO survives VALUES ('one')")
        rds.stop_db_cluster(DBClusterIdentifier=stopped.cluster_id)
        wait_status(rds, stopped.cluster_id, "stopped")
        assert postgres_processes(db.resource_id)
        port = srv.url.rsplit(":", 1)[1]

        # 1. a clean stop: SIGTERM stops every PostgreSQL server of this data directory
        stop_server(srv)
        assert srv.proc is not None and srv.proc.returncode == 0
        assert postgres_processes(str(data)) == []
        with pytest.raises(psycopg.OperationalError):
            db.connect().close()

        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=int(port))
        rds = srv.client("rds")
        cluster = wait_status(rds, db.cluster_id, "available", timeout=30)
        assert (cluster["Endpoint"], cluster["Port"]) == (db.host, db.port)
        assert cluster["DbClusterResourceId"] == db.resource_id
        with until(lambda: db.connect(), what="login after restart") as conn:
            assert conn.execute("SELECT v FROM survives").fetchall() == [("one",)]
            conn.execute("INSERT INTO survives VALUES ('two')")
        # a cluster stopped before the restart stays stopped
        assert rds.describe_db_clusters(DBClusterIdentifier=stopped.cluster_id)["DBClusters"][0][
            "Status"] == "stopped"
        assert postgres_processes(stopped.resource_id) == []

        # 2. kill -9 of auroral: PostgreSQL survives it (its own session); the next start adopts it
        old_postmaster = postmaster_pid(data, db.resource_id)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        srv = start_server(data, access_key=key, secret_key=secret, account=ACCOUNT, port=int(port))
        rds = srv.client("rds")
        cluster = wait_status(rds, db.cluster_id, "available", timeout=30)
        assert (cluster["Endpoint"], cluster["Port"]) == (db.host, db.port)
        with until(lambda: db.connect(), what="login after kill -9 of auroral") as conn:
            assert conn.execute("SELECT v FROM survives ORDER BY v").fetchall() == [("one",), ("two",)]
        instance = rds.describe_db_instances(DBInstanceIdentifier=db.instance_id)["DBInstances"][0]
        assert instance["DBInstanceStatus"] == "available"
        # exactly one postmaster serves the data directory: the orphan was not left running beside it
        postmasters = _postmasters(db.resource_id)
        assert postmasters == [postmaster_pid(data, db.resource_id)], postmasters
        assert old_postmaster not in postmasters

        # the stopped cluster can still be started after all that
        rds.start_db_cluster(DBClusterIdentifier=stopped.cluster_id)
        wait_status(rds, stopped.cluster_id, "available", timeout=30)
        with until(lambda: stopped.connect(), what="login to the restarted stopped cluster") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stop_server(srv)
    assert postgres_processes(str(data)) == []


def _postmasters(marker: str) -> list[int]:
    """Postmasters (``postgres -D <pgdata>``; backends rename themselves ``postgres: ...``)."""
    found = []
    pids = postgres_processes(marker)
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # gone meanwhile: a short-lived backend
        # not a configuration check (postgres -C), nor a child forked before it renamed itself
        if b"-D" in args and b"-C" not in args and parent not in pids:
            found.append(pid)
    return found
