"""Files and OS users of the engine, attacked from the PostgreSQL side.

The attacker is code running as a cluster's OS user (an engine escape: a superuser role, an untrusted
extension). Everything it does here is done with that uid (``setpriv``), on the real running server.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from auroral.engine import Installation, LocalEngine, PgServer, conf, proc
from auroral.engine.cluster import PARAMS_JSON
from auroral.engine.osuser import RunAs

from .conftest import ADMIN_PASSWORD, MASTER, MASTER_PASSWORD, connect, newest_installation_only

# root's file handling and the OS users do not depend on the major: on the newest one only (every major's
# servers are attacked as their OS user by test_engine_security and test_engine_extensions)
installation = newest_installation_only()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="OS users and root-owned files need root")

WRITTEN = (conf.LOCAL_FILE, conf.PARAMS_FILE, PARAMS_JSON, "pg_hba.conf", "pg_ident.conf", conf.IAM_USERS_FILE)
VICTIM_TEXT = "root's file: must never change\n"


def as_user(runas: RunAs, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={runas.uid}", f"--regid={runas.gid}", "--clear-groups", "--", *command],
        capture_output=True, text=True, check=False, timeout=30, cwd="/",
    )


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid for {pid}")


def _live_uid(pid: int) -> int | None:
    """``uid_of``, or None for a child that exited since it was listed (a startup or WAL-summary process)."""
    try:
        return uid_of(pid)
    except (ProcessLookupError, FileNotFoundError):
        return None


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    path = private / "victim"
    path.write_text(VICTIM_TEXT)
    path.chmod(0o644)
    return path


def assert_untouched(victim: Path) -> None:
    st = victim.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert victim.read_text() == VICTIM_TEXT
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]


def test_root_never_follows_symlinks_planted_in_the_data_directory(
    server: PgServer, runner: asyncio.Runner, victim: Path
) -> None:
    """Finding 9: symlinks at every name root writes (and at the old temporary names) point to a
    root file outside; a parameter change and a restart rewrite the configuration. Before the fix,
    root opened ``.<name>.tmp`` following the link and wrote our content into the victim."""
    attacker = server.runas
    for name in WRITTEN:
        for planted in (name, f".{name}.tmp"):
            result = as_user(attacker, "ln", "-sfn", str(victim), str(server.pgdata / planted))
            assert result.returncode == 0, result.stderr
    change = runner.run(server.set_parameters({"log_min_duration_statement": "250", "max_connections": "42"}))
    assert_untouched(victim)
    assert "max_connections" in change.pending_reboot
    runner.run(server.restart())
    assert_untouched(victim)
    for name in WRITTEN:
        st = (server.pgdata / name).lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
        assert st.st_uid == attacker.uid, name
    with connect(server) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("42",)
        assert conn.execute("SHOW log_min_duration_statement").fetchone() == ("250ms",)
    runner.run(server.set_parameters({"log_min_duration_statement": None, "max_connections": None}))
    runner.run(server.restart())


def test_fifo_and_symlinked_reads_do_not_hang_or_leak(
    server: PgServer, runner: asyncio.Runner, tmp_path: Path
) -> None:
    """Reads as root of files the server's user can replace: a FIFO (would block root forever) and a
    symlink to a root-only file with lines shaped like the IAM user list (would be read back into a
    file the server's user can read)."""
    secret = tmp_path / "secret"
    secret.write_text('"root-only-secret"\n')
    secret.chmod(0o600)
    params = server.pgdata / PARAMS_JSON
    assert as_user(server.runas, "rm", "-f", str(params)).returncode == 0
    assert as_user(server.runas, "mkfifo", str(params)).returncode == 0
    assert server.parameters() == {}  # ignored, without blocking
    change = runner.run(asyncio.wait_for(server.set_parameters({"log_min_duration_statement": "125"}), 30))
    assert change.applied == ["log_min_duration_statement"]
    assert stat.S_ISREG(params.lstat().st_mode)

    iam = server.pgdata / conf.IAM_USERS_FILE
    assert as_user(server.runas, "ln", "-sfn", str(secret), str(iam)).returncode == 0
    assert server.iam_users() == set()  # not followed
    runner.run(server.restart())  # the list is rewritten, without the secret's line
    assert "root-only-secret" not in iam.read_text()
    assert server.iam_users() == set()

    pid_file = server.pgdata / proc.PID_FILE
    assert proc.read_pid_file(server.pgdata) is not None
    runner.run(server.stop())
    assert as_user(server.runas, "ln", "-sfn", str(secret), str(pid_file)).returncode == 0
    assert proc.read_pid_file(server.pgdata) is None
    assert as_user(server.runas, "rm", "-f", str(pid_file)).returncode == 0
    runner.run(server.set_parameters({"log_min_duration_statement": None}))
    runner.run(server.start())


def test_cluster_directory_names_belong_to_root(server: PgServer) -> None:
    """The cluster directory and its log directory are root's: the server's user cannot swap
    ``pgdata``, ``run`` or ``log`` for a symlink (root opens the log for appending)."""
    for path, mode in ((server.cluster_dir, 0o711), (server.log_path.parent, 0o700)):
        st = path.lstat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, mode), path
    for target in ("log", "pgdata", "planted"):
        result = as_user(server.runas, "ln", "-sfn", "/etc", str(server.cluster_dir / f"{target}.new"))
        assert result.returncode != 0 and "Permission denied" in result.stderr
        result = as_user(server.runas, "mv", "-f", str(server.cluster_dir / target), str(server.cluster_dir / "x"))
        assert result.returncode != 0
    assert as_user(server.runas, "sh", "-c", f"echo x >> {server.log_path}").returncode != 0


def test_each_cluster_runs_as_its_own_os_user(
    engine: LocalEngine, server: PgServer, runner: asyncio.Runner
) -> None:
    """Finding 14(c): two clusters, two uids, neither can read the other's data directory; deleting a
    cluster removes its user and whatever ran as it."""
    other_id = f"cluster-isolation-other-pg{server.major}"
    other = runner.run(engine.create_server(other_id, str(server.major), admin_password=ADMIN_PASSWORD,
                                            master_username=MASTER, master_password=MASTER_PASSWORD))
    try:
        users = {server.runas.uid, other.runas.uid}
        assert len(users) == 2 and engine.runas.uid not in users and 0 not in users
        for srv in (server, other):
            assert srv.pid is not None and uid_of(srv.pid) == srv.runas.uid
            assert {uid for p in proc.children(srv.pid) if (uid := _live_uid(p)) is not None} == {srv.runas.uid}
            st = srv.pgdata.stat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (srv.runas.uid, 0o700)
            assert pwd.getpwuid(srv.runas.uid).pw_name == srv.runas.name
            assert (srv.cluster_dir / "osuser").read_text().split() == [srv.runas.name, str(srv.runas.uid)]
        for reader, owner in ((server, other), (other, server)):
            for command in (["cat", str(owner.pgdata / "PG_VERSION")], ["ls", str(owner.pgdata)],
                            ["ls", str(owner.socket_dir)], ["cat", str(owner.log_path)]):
                result = as_user(reader.runas, *command)
                assert result.returncode != 0 and "Permission denied" in result.stderr, command
            assert as_user(reader.runas, "cat", str(reader.pgdata / "PG_VERSION")).returncode == 0
        # something the attacker left running as the other cluster's user dies with the cluster
        lingering = subprocess.Popen(
            ["setpriv", f"--reuid={other.runas.uid}", f"--regid={other.runas.gid}", "--clear-groups", "sleep", "600"],
            start_new_session=True)
    finally:
        runner.run(engine.delete_server(other_id))
    assert lingering.wait(timeout=15) != 0
    with pytest.raises(KeyError):
        pwd.getpwnam(other.runas.name)
    with pytest.raises(KeyError):
        pwd.getpwuid(other.runas.uid)
    assert not other.cluster_dir.exists()


def test_engine_changes_no_permission_outside_its_directories(
    runner: asyncio.Runner, tmp_path: Path, installation: Installation
) -> None:
    """Finding 14(b): a data directory under a 0700 directory; creating a server leaves that
    directory's mode and ACL as they were (no search permission granted to PostgreSQL's users)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    data_dir = home / "data"
    data_dir.mkdir(mode=0o700)
    before = [(p, stat.S_IMODE(p.stat().st_mode), os.listxattr(p)) for p in (tmp_path, home, data_dir)]
    eng = LocalEngine(data_dir, installations=[installation])
    cluster_id = f"cluster-private-home-pg{installation.major}"
    try:
        srv = runner.run(eng.create_server(cluster_id, str(installation.major), admin_password=ADMIN_PASSWORD,
                                           master_username=MASTER, master_password=MASTER_PASSWORD))
        with connect(srv, dbname="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not eng.root.is_relative_to(home)
        assert (data_dir / "engine").resolve() == eng.root
        after = [(p, stat.S_IMODE(p.stat().st_mode), os.listxattr(p)) for p in (tmp_path, home, data_dir)]
        assert after == before
        assert all("system.posix_acl_access" not in xattrs for _, _, xattrs in after)
    finally:
        for srv in eng.list_servers():
            runner.run(eng.delete_server(srv.cluster_id))
        shutil.rmtree(eng.root, ignore_errors=True)


def test_restart_finds_each_cluster_user_and_moves_an_older_engine_directory(
    runner: asyncio.Runner, tmp_path: Path, installation: Installation
) -> None:
    """A fresh engine (auroral restarted) runs each cluster as the user recorded for it. An engine
    directory of an earlier version inside the data directory (clusters owned by ``auroral-pg``, no
    record) moves out on start, and its clusters get their own users."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    major = installation.major
    first = LocalEngine(data_dir, installations=[installation])
    engines = [first]
    ids = [f"cluster-restart-{n}-pg{major}" for n in ("own", "old")]
    try:
        for cid in ids:
            runner.run(first.create_server(cid, str(major), admin_password=ADMIN_PASSWORD,
                                           master_username=MASTER, master_password=MASTER_PASSWORD))
        own_user = first.get_server(ids[0]).runas
        old = first.get_server(ids[1])
        runner.run(first.close())
        # make the second cluster look like one of an earlier version, and the layout too
        runner.run(first._remove_cluster_user(ids[1]))
        (old.cluster_dir / "osuser").unlink()
        service = first.runas
        for dirpath, dirnames, filenames in (*os.walk(old.pgdata), *os.walk(old.cluster_dir / "pglog")):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.chown(name, service.uid, service.gid, follow_symlinks=False)
        (data_dir / "engine").unlink()
        os.rename(first.root, data_dir / "engine")

        second = LocalEngine(data_dir, installations=[installation])
        engines.insert(0, second)
        assert second.root == first.root and second.isolated
        report = runner.run(second.recover({cid: ADMIN_PASSWORD for cid in ids}))
        assert sorted(report.started) == sorted(ids), report
        assert (data_dir / "engine").is_symlink() and (data_dir / "engine").resolve() == first.root
        assert second.get_server(ids[0]).runas == own_user
        migrated = second.get_server(ids[1]).runas
        assert migrated not in (own_user, service) and migrated.uid != 0
        for dirpath, dirnames, filenames in os.walk(old.pgdata):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                assert os.lstat(name).st_uid == migrated.uid, name
        for cid in ids:
            srv = second.get_server(cid)
            assert srv.pid is not None and uid_of(srv.pid) == srv.runas.uid
            with connect(srv, dbname="postgres") as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        new = runner.run(second.create_server(f"cluster-restart-new-pg{major}", str(major),
                                              admin_password=ADMIN_PASSWORD, master_username=MASTER,
                                              master_password=MASTER_PASSWORD))
        assert new.runas not in (own_user, service, migrated)
        for srv in second.list_servers():
            runner.run(second.delete_server(srv.cluster_id))
        for gone in (own_user, migrated, new.runas):
            with pytest.raises(KeyError):
                pwd.getpwnam(gone.name)
        assert pwd.getpwnam(service.name).pw_uid == service.uid  # the service user stays
    finally:
        for eng in engines:
            for srv in eng.list_servers():
                runner.run(eng.delete_server(srv.cluster_id))
        shutil.rmtree(first.root, ignore_errors=True)
