"""The engine's files and OS users, attacked from inside a cluster, through the running server.

The attacker is code running as a cluster's OS user (an engine escape); it is played with ``setpriv``
as that uid. The server is driven through the RDS API only.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .e2e_helpers import FAST, cluster_dir, create_db, delete_db, ident, postmaster_pid, until, wait_status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="OS users and root-owned files need root")

WRITTEN = ("auroral.local.conf", "auroral.params.conf", "auroral.params.json", "pg_hba.conf", "pg_ident.conf",
           "auroral.iam_users")
VICTIM_TEXT = "root's file: must never change\n"


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


def as_uid(uid: int, *command: str) -> subprocess.CompletedProcess[str]:
    gid = pwd.getpwuid(uid).pw_gid
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command],
                          capture_output=True, text=True, check=False, timeout=30, cwd="/")


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return int(next(line for line in handle if line.startswith("Uid:")).split()[1])


def _show(db: Any, name: str) -> str:
    with db.connect() as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def test_parameter_change_and_reboot_never_follow_planted_symlinks(rds: Any, server: Any, tmp_path: Path) -> None:
    """Finding 9: the cluster's OS user replaces every file root rewrites (and the old temporary names)
    with symlinks to a root file outside; ModifyDBClusterParameterGroup and RebootDBInstance rewrite
    the configuration as root. The outside file stays as it was; the new values take effect."""
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    victim = private / "victim"
    victim.write_text(VICTIM_TEXT)
    victim.chmod(0o644)
    group = ident("e2e-files")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group,
                                          DBParameterGroupFamily="aurora-postgresql16", Description="e2e")
    db = create_db(rds, prefix="e2e-files", DBClusterParameterGroupName=group)
    try:
        pgdata = cluster_dir(server.data_dir, db.resource_id).resolve() / "pgdata"
        uid = pgdata.stat().st_uid
        assert uid != 0
        for name in WRITTEN:
            for planted in (name, f".{name}.tmp"):
                result = as_uid(uid, "ln", "-sfn", str(victim), str(pgdata / planted))
                assert result.returncode == 0, result.stderr

        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": "log_min_duration_statement", "ParameterValue": "250", "ApplyMethod": "immediate"},
            {"ParameterName": "max_connections", "ParameterValue": "42", "ApplyMethod": "pending-reboot"},
        ])
        # (the planted pg_hba.conf keeps logins out until the reboot rewrites it: the attacker's own cluster)
        rds.reboot_db_instance(DBInstanceIdentifier=db.instance_id)
        time.sleep(0.2)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
        wait_status(rds, db.cluster_id, "available")
        until(lambda: _show(db, "max_connections") == "42", what="static parameter after the reboot")
        assert _show(db, "log_min_duration_statement") == "250ms"

        st = victim.lstat()
        assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644)
        assert victim.read_text() == VICTIM_TEXT
        assert [p.name for p in private.iterdir()] == ["victim"]
        for name in WRITTEN:
            written = (pgdata / name).lstat()
            assert stat.S_ISREG(written.st_mode) and written.st_uid == uid, name
    finally:
        delete_db(rds, db)
    until(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=group) or True,
          timeout=30, what="delete the parameter group")


def test_clusters_run_as_separate_users_removed_with_them(rds: Any, server: Any) -> None:
    """Finding 14(c): two clusters, two OS users; neither can read the other's files; deleting a
    cluster removes its user."""
    first, second = create_db(rds, prefix="e2e-iso"), create_db(rds, prefix="e2e-iso")
    deleted = False
    try:
        uids = {}
        for db in (first, second):
            pid = postmaster_pid(server.data_dir, db.resource_id)
            uids[db.resource_id] = uid_of(pid)
            pgdata = cluster_dir(server.data_dir, db.resource_id).resolve() / "pgdata"
            st = pgdata.stat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uids[db.resource_id], 0o700)
        assert len(set(uids.values())) == 2 and 0 not in uids.values()
        assert pwd.getpwnam("auroral-pg").pw_uid not in uids.values()
        for reader, owner in ((first, second), (second, first)):
            target = cluster_dir(server.data_dir, owner.resource_id).resolve()
            for command in (["cat", str(target / "pgdata" / "PG_VERSION")], ["ls", str(target / "pgdata")],
                            ["cat", str(target / "log" / "postmaster.log")]):
                result = as_uid(uids[reader.resource_id], *command)
                assert result.returncode != 0 and "Permission denied" in result.stderr, command
        gone = uids[second.resource_id]
        name = pwd.getpwuid(gone).pw_name
        assert name.startswith("auroral-")
        delete_db(rds, second)
        deleted = True
        until(lambda: not cluster_dir(server.data_dir, second.resource_id).exists(), timeout=60,
              what="cluster files removed")
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        with first.connect() as conn:  # the other cluster is untouched
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        delete_db(rds, first)
        if not deleted:
            delete_db(rds, second)


def test_no_permission_changed_outside_auroral_and_store_is_private(rds: Any, server: Any) -> None:
    """Finding 14(a, b): the server's data directory lives in a 0700 directory (``server_tmpdir``);
    with a cluster running, that directory keeps its mode and has no ACL; the store's files are 0600."""
    db = create_db(rds, prefix="e2e-perm")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (x int)")  # a write, so the store and the WAL have content
        for path in (server.data_dir.parent, server.data_dir):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
            assert "system.posix_acl_access" not in os.listxattr(path), path
        engine_root = (server.data_dir / "engine").resolve()
        assert not engine_root.is_relative_to(server.data_dir)
        for suffix in ("", "-wal", "-shm"):
            store_file = server.data_dir / f"auroral.sqlite3{suffix}"
            assert stat.S_IMODE(store_file.stat().st_mode) == 0o600, store_file
        pg_uid = uid_of(postmaster_pid(server.data_dir, db.resource_id))
        assert as_uid(pg_uid, "cat", str(server.data_dir / "auroral.sqlite3-wal")).returncode != 0
    finally:
        delete_db(rds, db)
