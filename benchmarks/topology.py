"""Topology benchmark: adding a reader, failing over, and replica lag under a pgbench write load, each
beside the same thing done by hand with the same PostgreSQL binaries in the same run.

    python benchmarks/topology.py [--runs 3] [--seconds 10]

* add a reader — auroral: CreateDBInstance in a cluster with a writer until the new instance's endpoint
  answers ``SELECT 1`` (by its DNS name); by hand: ``pg_basebackup -R`` of a running primary, ``pg_ctl
  start -w``, ``SELECT 1`` on the standby.
* failover — auroral: FailoverDBCluster until the cluster endpoint's name accepts a write on the new writer
  (target <= 5 s; Aurora documents "typically under 30 seconds"); by hand: fast shutdown of the primary,
  ``pg_ctl promote -w`` of the standby, a write on it.
* connecting through AWS's driver wrapper (``aws-advanced-python-wrapper``, plugins ``failover``) to the
  cluster endpoint, beside a plain psycopg connect to it (the wrapper adds its dialect and topology
  queries: the difference is their cost).
* replica lag — while ``pgbench -c 4`` writes to the writer for ``--seconds``, a probe inserts a marker row
  on the writer every 0.2 s and times until the reader shows it (what an application reading its own write
  from a reader sees); the same probe on the hand-made pair.

Run as root (auroral's default), with the README's install. Prints medians and the ratios auroral/by-hand.
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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT_KEY, ROOT_SECRET, auroral

from auroral.engine import binaries, osuser

PASSWORD = "Bench-pass-123"
FAST = {"Delay": 1, "MaxAttempts": 120}


def rds_client(url: str) -> Any:
    return boto3.session.Session().client(
        "rds", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
    )


def until(check: Callable[[], bool], timeout: float, what: str, pause: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except psycopg.Error:
            pass
        time.sleep(pause)
    raise RuntimeError(f"timed out waiting for {what}")


def lag_probe(write: Callable[[], psycopg.Connection[Any]], read: Callable[[], psycopg.Connection[Any]],
              seconds: float) -> list[float]:
    """Seconds from a committed marker on the writer to its visibility on the reader, every 0.2 s."""
    samples = []
    with write() as w, read() as r:
        w.execute("CREATE TABLE IF NOT EXISTS lag_probe (id text PRIMARY KEY)")
        until(lambda: r.execute("SELECT to_regclass('lag_probe') IS NOT NULL").fetchone() == (True,), 30,
              "the probe table on the reader")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            marker = secrets.token_hex(8)
            w.execute("INSERT INTO lag_probe VALUES (%s)", (marker,))
            t0 = time.perf_counter()
            until(lambda m=marker: r.execute("SELECT 1 FROM lag_probe WHERE id = %s", (m,)).fetchone() is not None,  # type: ignore[misc]
                  30, "the marker on the reader", pause=0.001)
            samples.append(time.perf_counter() - t0)
            time.sleep(0.2)
    return samples


def pgbench(tool: Path, args: list[str], seconds: int, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(tool), *args, "-c", "4", "-j", "2", "-T", str(seconds), "-n", "-N"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **kwargs)


# --- by hand -------------------------------------------------------------------------------------

class ByHand:
    """A primary and standbys of the newest installed PostgreSQL, run as auroral's service user."""

    def __init__(self) -> None:
        inst = max(binaries.available(), key=lambda i: i.major)
        self.runas = osuser.service_user()
        self.root = Path(tempfile.mkdtemp(prefix="auroral-topo-"))
        os.chmod(self.root, 0o711)
        osuser.check_traversable(self.root, self.runas)
        self.inst = osuser.runnable(inst, self.runas, self.root / "bin")
        self.kwargs = self.runas.subprocess_kwargs()
        self.env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        self.sock = self.root / "sock"
        osuser.make_private_dir(self.sock, self.runas)
        self.n = 0

    def run(self, *args: str) -> None:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, env=self.env, cwd="/", **self.kwargs)

    def start(self, pgdata: Path, port: int) -> None:
        self.run(str(self.inst.tool("pg_ctl")), "-D", str(pgdata), "-w", "-l", str(self.sock / f"{port}.log"),
                 "-o", f"-c listen_addresses='' -c unix_socket_directories={self.sock} -p {port}", "start")

    def connect(self, port: int) -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.sock), port=port, user="postgres", dbname="postgres", autocommit=True)

    def primary(self) -> tuple[Path, int]:
        self.n += 1
        pgdata = self.root / f"p{self.n}"
        osuser.make_private_dir(pgdata, self.runas)
        self.run(str(self.inst.tool("initdb")), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8")
        port = 6000 + self.n
        self.start(pgdata, port)
        return pgdata, port

    def standby(self, primary_port: int) -> tuple[Path, int, float]:
        self.n += 1
        pgdata = self.root / f"s{self.n}"
        port = 6000 + self.n
        osuser.make_private_dir(pgdata, self.runas)
        t0 = time.perf_counter()
        self.run(str(self.inst.tool("pg_basebackup")), "-D", str(pgdata), "-h", str(self.sock),
                 "-p", str(primary_port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast")
        self.start(pgdata, port)
        with self.connect(port) as conn:
            conn.execute("SELECT 1").fetchone()
        return pgdata, port, time.perf_counter() - t0

    def stop(self, pgdata: Path) -> None:
        self.run(str(self.inst.tool("pg_ctl")), "-D", str(pgdata), "-m", "fast", "-w", "stop")

    def failover(self, primary: Path, standby: Path, port: int) -> float:
        t0 = time.perf_counter()
        self.stop(primary)
        self.run(str(self.inst.tool("pg_ctl")), "-D", str(standby), "-w", "promote")
        with self.connect(port) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS after_failover (x int)")
            conn.execute("INSERT INTO after_failover VALUES (1)")
        return time.perf_counter() - t0

    def close(self) -> None:
        for pgdata in self.root.glob("[ps]*"):
            if (pgdata / "postmaster.pid").exists():
                subprocess.run([str(self.inst.tool("pg_ctl")), "-D", str(pgdata), "-m", "immediate", "stop"],
                               capture_output=True, env=self.env, cwd="/", **self.kwargs)
        shutil.rmtree(self.root, ignore_errors=True)


def by_hand(runs: int, seconds: int) -> dict[str, list[float]]:
    hand = ByHand()
    out: dict[str, list[float]] = {"reader": [], "failover": [], "lag": []}
    try:
        for _ in range(runs):
            primary, pport = hand.primary()
            standby, sport, took = hand.standby(pport)
            out["reader"].append(took)
            if not out["lag"]:
                hand.run(str(hand.inst.tool("pgbench")), "-i", "-s", "2", "-h", str(hand.sock), "-p", str(pport),
                         "-U", "postgres", "postgres")
                load = pgbench(hand.inst.tool("pgbench"), ["-h", str(hand.sock), "-p", str(pport), "-U", "postgres",
                                                          "postgres"], seconds, hand.env, **hand.kwargs)
                out["lag"] = lag_probe(lambda p=pport: hand.connect(p),  # type: ignore[misc]
                                       lambda p=sport: hand.connect(p), seconds - 1)  # type: ignore[misc]
                load.wait()
            out["failover"].append(hand.failover(primary, standby, sport))
            hand.stop(standby)
        print(f"by hand: PostgreSQL {hand.inst.version} as {hand.runas.name}")
    finally:
        hand.close()
    return out


# --- auroral ---------------------------------------------------------------------------------------

def auroral_runs(url: str, runs: int, seconds: int) -> dict[str, list[float]]:
    rds = rds_client(url)
    out: dict[str, list[float]] = {"reader": [], "failover": [], "lag": [], "plain": [], "wrapper": []}
    cid = f"topo-{secrets.token_hex(3)}"
    rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="16.4",
                          MasterUsername="master", MasterUserPassword=PASSWORD, DatabaseName="bench")
    rds.create_db_instance(DBInstanceIdentifier=f"{cid}-w", DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=f"{cid}-w", WaiterConfig=FAST)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    endpoint, port = cluster["Endpoint"], cluster["Port"]

    def connect(host: str) -> psycopg.Connection[Any]:
        return psycopg.connect(host=host, port=port, user="master", password=PASSWORD, dbname="bench",
                               sslmode="require", connect_timeout=5, autocommit=True)

    readers = []
    for n in range(runs):
        name = f"{cid}-r{n}"
        t0 = time.perf_counter()
        answer = rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=cid,
                                        Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")["DBInstance"]
        address = answer.get("Endpoint", {}).get("Address")

        def ready(name: str = name) -> bool:
            nonlocal address
            if not address:
                address = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0].get(
                    "Endpoint", {}).get("Address")
            if not address:
                return False
            with connect(address) as conn:
                return conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

        until(ready, 120, f"reader {name}")
        out["reader"].append(time.perf_counter() - t0)
        readers.append(str(address))

    wrapper_connects(endpoint, port, runs * 5, out)

    env = {**os.environ, "PGPASSWORD": PASSWORD, "PGSSLMODE": "require"}
    # the endpoint wants TLS: the system's pgbench (Debian's links OpenSSL; the embedded wheel's does not)
    system = shutil.which("pgbench")
    if system is None:
        raise SystemExit("pgbench with TLS support not found: apt-get install postgresql-client")
    tool = Path(system)
    init = subprocess.run([str(tool), "-i", "-s", "2", "-h", endpoint, "-p", str(port), "-U", "master", "bench"],
                          capture_output=True, text=True, env=env)
    if init.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {init.stderr.strip()}")
    load = pgbench(tool, ["-h", endpoint, "-p", str(port), "-U", "master", "bench"], seconds, env)
    out["lag"] = lag_probe(lambda: connect(endpoint), lambda: connect(readers[0]), seconds - 1)
    load.wait()

    for _ in range(runs):
        with connect(endpoint) as conn:
            before = conn.execute("SELECT aurora_db_instance_identifier()").fetchone()
        t0 = time.perf_counter()
        rds.failover_db_cluster(DBClusterIdentifier=cid)

        def writable(before: tuple[Any, ...] | None = before) -> bool:
            with connect(endpoint) as conn:
                row = conn.execute("SELECT aurora_db_instance_identifier(), pg_is_in_recovery()").fetchone()
                if row is None or row[1] or (row[0],) == before:
                    return False
                conn.execute("CREATE TABLE IF NOT EXISTS after_failover (x int)")
                conn.execute("INSERT INTO after_failover VALUES (1)")
                return True

        until(writable, 120, "the new writer behind the cluster endpoint")
        out["failover"].append(time.perf_counter() - t0)
        # the next run starts from a settled cluster
        rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
        threading.Event().wait(1)
    return out


def wrapper_connects(host: str, port: int, n: int, out: dict[str, list[float]]) -> None:
    import aws_advanced_python_wrapper as wrapper

    conninfo = f"host={host} port={port} dbname=bench user=master password={PASSWORD} sslmode=require"
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
            out["plain"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn = wrapper.AwsWrapperConnection.connect(psycopg.Connection.connect, conninfo, plugins="failover",
                                                        autocommit=True)
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    cursor.fetchone()
            finally:
                conn.close()
            out["wrapper"].append(time.perf_counter() - t0)
    finally:
        wrapper.release_resources()


def _line(what: str, mine: list[float], theirs: list[float], base: str = "by hand") -> None:
    a, b = statistics.median(mine), statistics.median(theirs)
    print(f"{what:<36} auroral median {a * 1000:8.1f} ms (max {max(mine) * 1000:8.1f})   "
          f"{base} {b * 1000:8.1f} ms (max {max(theirs) * 1000:8.1f})   ratio {a / b:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    hand = by_hand(args.runs, args.seconds)
    with auroral() as url:
        mine = auroral_runs(url, args.runs, args.seconds)
    _line("add a reader (create -> SELECT 1)", mine["reader"], hand["reader"])
    _line("failover (call -> write on new)", mine["failover"], hand["failover"])
    _line("replica lag under pgbench (visible)", mine["lag"], hand["lag"])
    _line("connect: wrapper (failover plugin)", mine["wrapper"], mine["plain"], base="plain psycopg")
    target = statistics.median(mine["failover"])
    print(f"failover target <= 5 s: {'met' if target <= 5 else 'NOT met'} ({target:.2f} s)")


if __name__ == "__main__":
    main()
