"""Helpers for the RDS end-to-end tests: clusters created with unmodified boto3 against a running
auroral, and PostgreSQL clients (psycopg, psql) that connect through the endpoint as users do."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ENGINE_VERSION = "16.4"
MASTER = "master"
PASSWORD = "Master-pass-1"
# waiters poll every 0.2 s (botocore sleeps Delay seconds between attempts; a float is fine): a create is
# then noticed within 0.2 s of being done instead of up to 1 s; 600 attempts keep the 2 minute limit
FAST = {"Delay": 0.2, "MaxAttempts": 600}


def served_engine_versions() -> list[tuple[str, int]]:
    """One Aurora EngineVersion (the newest minor) per PostgreSQL major a test server serves here: the
    majors installed (``AURORAL_PG_BINDIR``, the embedded wheel, system packages; 14/15 only where
    auroral_rds can be built) and those it fetches on first use (into the tests' shared cache). The e2e
    tests that must hold on every major are parametrized with these."""
    from auroral.engine import available, fetch
    from auroral.engine.extension import servable
    from auroral.rds.engine_versions import MINORS

    majors = {inst.major for inst in available() if servable(inst)} | set(fetch.fetchable_majors())
    return [(MINORS[major][-1], major) for major in sorted(majors) if major in MINORS]


def ident(prefix: str) -> str:
    """A unique AWS identifier (letters, digits, hyphens; starts with a letter)."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Db:
    """A cluster with one writer instance, ready for SQL."""

    cluster_id: str
    instance_id: str
    host: str
    port: int
    resource_id: str
    password: str
    database: str = "appdb"
    master: str = MASTER

    def connect(self, user: str | None = None, password: str | None = None, *, dbname: str | None = None,
                sslmode: str = "require", **kw: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=user or self.master,
            password=password if password is not None else self.password,
            dbname=dbname or self.database, sslmode=sslmode, connect_timeout=10, autocommit=True, **kw,
        )


def create_db(rds: Any, *, prefix: str = "e2e", password: str = PASSWORD, database: str = "appdb",
              wait: bool = True, engine_version: str = ENGINE_VERSION, **extra: Any) -> Db:
    cid, iid = ident(prefix), ident(prefix + "-i")
    rds.create_db_cluster(
        DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=engine_version,
        MasterUsername=MASTER, MasterUserPassword=password, DatabaseName=database, **extra,
    )
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    if wait:
        rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    return Db(cid, iid, cluster.get("Endpoint", ""), cluster.get("Port", 0), cluster["DbClusterResourceId"],
              password, database)


def delete_db(rds: Any, db: Db) -> None:
    """Best-effort cleanup (a test may already have deleted parts). Every instance of the cluster goes
    first, readers a test added too: a cluster with an instance left cannot be deleted, and the loop below
    would otherwise spend its whole 30 s retrying."""
    instances = [db.instance_id]
    with contextlib.suppress(Exception):
        members = rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["DBClusterMembers"]
        readers = [m["DBInstanceIdentifier"] for m in members if not m["IsClusterWriter"]]
        writers = [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]
        instances = list(dict.fromkeys([*readers, *writers, db.instance_id]))
    for instance in instances:
        with contextlib.suppress(Exception):
            rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True)
            return
        except rds.exceptions.DBClusterNotFoundFault:
            return
        except Exception:
            time.sleep(0.2)


def wait_status(rds: Any, cluster_id: str, want: str, timeout: float = 60,
                seen: list[str] | None = None) -> dict[str, Any]:
    """Poll DescribeDBClusters until ``Status == want``; every status observed goes to ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        cluster: dict[str, Any] = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
        if seen is not None and (not seen or seen[-1] != cluster["Status"]):
            seen.append(cluster["Status"])
        if cluster["Status"] == want:
            return cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"{cluster_id} is {cluster['Status']}, not {want} (seen {seen})")
        time.sleep(0.1)


def wait_instance_gone(rds: Any, instance_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rds.describe_db_instances(DBInstanceIdentifier=instance_id)
        except rds.exceptions.DBInstanceNotFoundFault:
            return
        time.sleep(0.2)
    raise AssertionError(f"instance {instance_id} still exists")


def wait_cluster_gone(rds: Any, cluster_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rds.describe_db_clusters(DBClusterIdentifier=cluster_id)
        except rds.exceptions.DBClusterNotFoundFault:
            return
        time.sleep(0.2)
    raise AssertionError(f"cluster {cluster_id} still exists")


def until(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    """Retry ``check`` until it returns a truthy value without raising."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout}s (last error: {last!r})")


def cluster_dir(data_dir: Path, resource_id: str) -> Path:
    return data_dir / "engine" / "clusters" / resource_id


def postmaster_pid(data_dir: Path, resource_id: str) -> int:
    pidfile = cluster_dir(data_dir, resource_id) / "pgdata" / "postmaster.pid"
    return int(pidfile.read_text().splitlines()[0])


def postgres_processes(marker: str) -> list[int]:
    """PIDs of PostgreSQL processes whose command line, cwd or open data directory mentions ``marker``
    (a cluster's resource id or a data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            if not os.path.basename(exe.removesuffix(" (deleted)")).startswith("postgres"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if marker in cmdline or marker in cwd:
            found.append(int(entry.name))
    return found


def psql(db: Db, sql: str, *, user: str | None = None, password: str | None = None,
         conninfo: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``psql`` (the system client, unmodified) against the endpoint."""
    env = {**os.environ, "PGPASSWORD": password if password is not None else db.password,
           "PGCONNECT_TIMEOUT": "10"}
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSSLMODE", "PGSERVICE", "PGOPTIONS"):
        env.pop(var, None)
    target = conninfo or (f"host={db.host} port={db.port} user={user or db.master} dbname={db.database} "
                          "sslmode=require")
    proc = subprocess.run(["psql", target, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                          env=env, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"psql failed ({proc.returncode}): {proc.stderr}")
    return proc
