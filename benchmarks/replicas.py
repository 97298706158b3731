"""Readers and failover: CreateDBInstance of a reader until a login on its endpoint succeeds (TLS),
beside a raw ``pg_basebackup -R`` + ``pg_ctl start`` + ``SELECT 1`` of a standby of the same binaries;
then FailoverDBCluster until the cluster is ``available`` again and a write on the new writer (found
through DescribeDBClusters, as an application would) succeeds.

    python benchmarks/replicas.py [--runs 5]

Targets (issue 12): adding a reader of a small cluster about 1 s (pg_basebackup itself is most of
it); a failover a few seconds at most.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import auroral
from provision import PASSWORD, rds_client

from auroral.engine import binaries, osuser


def raw_baseline(runs: int) -> list[float]:
    """A primary (initdb, pg_ctl start), then per run: pg_basebackup -R of it, pg_ctl start of the
    standby, SELECT 1 on it; as the unprivileged user."""
    inst = max((i for i in binaries.available() if i.source == "embedded"), key=lambda i: i.major, default=None)
    if inst is None:
        inst = max(binaries.available(), key=lambda i: i.major)
    runas = osuser.service_user()
    root = Path(tempfile.mkdtemp(prefix="auroral-raw-"))
    os.chmod(root, 0o711)
    kwargs = runas.subprocess_kwargs()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, env=env, cwd="/", **kwargs)

    try:
        osuser.check_traversable(root, runas)
        inst = osuser.runnable(inst, runas, root / "bin")
        primary, psock = root / "p", root / "ps"
        for d in (primary, psock):
            osuser.make_private_dir(d, runas)
        run(str(inst.tool("initdb")), "-D", str(primary), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
            "--locale=C.UTF-8")
        run(str(inst.tool("pg_ctl")), "-D", str(primary), "-w", "-l", str(psock / "log"), "-o",
            f"-c listen_addresses='' -c unix_socket_directories={psock}", "start")
        times = []
        for n in range(runs):
            standby, sock = root / f"s{n}", root / f"ss{n}"
            for d in (standby, sock):
                osuser.make_private_dir(d, runas)
            t0 = time.perf_counter()
            run(str(inst.tool("pg_basebackup")), "-h", str(psock), "-U", "postgres", "-D", str(standby),
                "-X", "stream", "-c", "fast", "-R")
            run(str(inst.tool("pg_ctl")), "-D", str(standby), "-w", "-l", str(sock / "log"), "-o",
                f"-c listen_addresses='' -c unix_socket_directories={sock}", "start")
            with psycopg.connect(host=str(sock), user="postgres", dbname="postgres") as conn:
                conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - t0)
            run(str(inst.tool("pg_ctl")), "-D", str(standby), "-m", "immediate", "stop")
        run(str(inst.tool("pg_ctl")), "-D", str(primary), "-m", "immediate", "stop")
        print(f"raw baseline: PostgreSQL {inst.version} ({inst.source}) as {runas.name}")
        return times
    finally:
        shutil.rmtree(root, ignore_errors=True)


def login(host: str, port: int, *, write: bool = False) -> bool:
    try:
        with psycopg.connect(host=host, port=port, user="master", password=PASSWORD, dbname="bench",
                             sslmode="require", connect_timeout=5, autocommit=True) as conn:
            if write:
                conn.execute("INSERT INTO bench VALUES (1)")
            else:
                conn.execute("SELECT 1").fetchone()
        return True
    except psycopg.Error:
        return False


def wait_for(check: Any, what: str, timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return
        time.sleep(0.02)  # a client polling Describe (tighter polling only steals CPU from the server)
    raise RuntimeError(f"{what} not reached in {timeout:.0f} s")


def add_reader(rds: Any, cid: str, name: str) -> float:
    started = time.perf_counter()
    rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")

    def reachable() -> bool:
        endpoint = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0].get("Endpoint")
        return bool(endpoint) and login(endpoint["Address"], endpoint["Port"])

    wait_for(reachable, f"a login on {name}")
    return time.perf_counter() - started


def failover(rds: Any, cid: str, target: str) -> float:
    started = time.perf_counter()
    rds.failover_db_cluster(DBClusterIdentifier=cid, TargetDBInstanceIdentifier=target)

    def written() -> bool:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
        writers = [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]]
        return (cluster["Status"] == "available" and writers == [target]
                and login(cluster["Endpoint"], cluster["Port"], write=True))

    wait_for(written, f"a write on {target}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    raw = raw_baseline(args.runs)
    with auroral() as url:
        rds = rds_client(url)
        cid = f"bench-{secrets.token_hex(3)}"
        rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="16.4",
                              MasterUsername="master", MasterUserPassword=PASSWORD, DatabaseName="bench")
        rds.create_db_instance(DBInstanceIdentifier=f"{cid}-w", DBClusterIdentifier=cid, Engine="aurora-postgresql",
                               DBInstanceClass="db.r6g.large")
        wait_for(lambda: rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0].get("Endpoint"),
                 "the writer")
        cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
        with psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user="master", password=PASSWORD,
                             dbname="bench", sslmode="require", autocommit=True) as conn:
            conn.execute("CREATE TABLE bench (v int)")
        adds = []
        for n in range(args.runs):
            name = f"{cid}-r{n}"
            adds.append(add_reader(rds, cid, name))
            if n < args.runs - 1:
                rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
                wait_for(lambda nm=name: not [i for i in rds.describe_db_instances()["DBInstances"]
                                              if i["DBInstanceIdentifier"] == nm], f"{name} deleted")
        median, raw_median = statistics.median(adds), statistics.median(raw)
        print(f"adding a reader (CreateDBInstance -> first login on its endpoint over TLS), {args.runs} runs:")
        print(f"  auroral median {median * 1000:.0f} ms  (min {min(adds) * 1000:.0f}, max {max(adds) * 1000:.0f})")
        print(f"  raw pg_basebackup -R + pg_ctl start + SELECT 1 median {raw_median * 1000:.0f} ms")
        print(f"  ratio auroral/raw {median / raw_median:.2f}  (target: about 1 s)")

        members = [f"{cid}-r{args.runs - 1}", f"{cid}-w"]
        times = [failover(rds, cid, members[n % 2]) for n in range(args.runs)]
        print(f"FailoverDBCluster -> available with the new writer and a write through the cluster endpoint, "
              f"{args.runs} runs:")
        print(f"  median {statistics.median(times) * 1000:.0f} ms  (min {min(times) * 1000:.0f}, "
              f"max {max(times) * 1000:.0f})")


if __name__ == "__main__":
    main()
