"""Backup benchmark: a snapshot and a restore of a cluster holding a pgbench database (scale 70, about 1 GB),
a point-in-time restore, and the cost of continuous WAL archiving on pgbench's write TPS.

    python benchmarks/backup.py [--scale 70] [--seconds 30] [--clients 4]

In one run: two auroral servers, one with continuous WAL archiving (the default) and one without
(``AURORAL_WAL_ARCHIVING=0``), each with a cluster loaded by ``pgbench -i -s <scale>``. On both, pgbench (TPC-B,
``-T <seconds>``) measures write TPS: the ratio is archiving's cost. On the archiving one:
CreateDBClusterSnapshot until ``available`` (pg_basebackup streamed through AES-256-GCM into the snapshot
store), RestoreDBClusterFromSnapshot until ``available`` (decrypt + untar + start), as MB/s of the database's size;
then a
RestoreDBClusterToPointInTime to a moment after the TPS run (the snapshot plus the archived WAL of the run).
Needs pgbench with TLS (Debian's ``postgresql-client``); run as root (auroral's default). Prints times and
ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT_KEY, ROOT_SECRET, auroral

PASSWORD = "Bench-pass-123"
WAIT = {"Delay": 1, "MaxAttempts": 3600}


def client(url: str) -> Any:
    return boto3.client("rds", endpoint_url=url, region_name="us-east-1", aws_access_key_id=ROOT_KEY,
                        aws_secret_access_key=ROOT_SECRET)


def pgbench(*args: str, host: str, port: int) -> str:
    exe = shutil.which("pgbench")
    if exe is None:
        raise SystemExit("pgbench with TLS support not found: apt-get install postgresql-client")
    out = subprocess.run([exe, *args, "-h", host, "-p", str(port), "-U", "master", "bench"], check=True,
                         capture_output=True, text=True, env={**os.environ, "PGPASSWORD": PASSWORD,
                                                              "PGSSLMODE": "require"})
    return out.stdout


def tps(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"no tps in pgbench's output:\n{text}")


def cluster(rds: Any, name: str, scale: int) -> tuple[str, int]:
    rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="master",
                          MasterUserPassword=PASSWORD, DatabaseName="bench")
    rds.create_db_instance(DBInstanceIdentifier=f"{name}-w", DBClusterIdentifier=name, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=f"{name}-w", WaiterConfig=WAIT)
    found = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    host, port = found["Endpoint"], found["Port"]
    pgbench("-i", "-I", "dtGvp", "-s", str(scale), "-q", host=host, port=port)
    return host, port


def timed_restore(rds: Any, call: Any, name: str, **params: Any) -> float:
    t0 = time.perf_counter()
    call(DBClusterIdentifier=name, **params)
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=name, WaiterConfig=WAIT)
    status = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Status"]
    if status != "available":
        raise RuntimeError(f"{name}: {status}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=70)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with auroral() as url_on, auroral({"AURORAL_WAL_ARCHIVING": "0"}) as url_off:
        on, off = client(url_on), client(url_off)
        t0 = time.perf_counter()
        host_on, port_on = cluster(on, "bench", args.scale)
        host_off, port_off = cluster(off, "bench", args.scale)
        print(f"loaded pgbench scale {args.scale} into two clusters in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        on.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="base", DBClusterIdentifier="bench")
        on.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier="base", WaiterConfig=WAIT)
        snap_seconds = time.perf_counter() - t0
        restore_seconds = timed_restore(on, on.restore_db_cluster_from_snapshot, "copy", SnapshotIdentifier="base",
                                        Engine="aurora-postgresql")

        # archiving's cost: the same TPC-B run on both, interleaved (off, on, off, on) to share the machine's mood
        results: dict[str, list[float]] = {"on": [], "off": []}
        half = max(5, args.seconds // 2)
        for label, host, port in (("off", host_off, port_off), ("on", host_on, port_on)) * 2:
            results[label].append(tps(pgbench("-c", str(args.clients), "-j", str(args.clients), "-T", str(half),
                                               host=host, port=port)))
        tps_on, tps_off = sum(results["on"]) / 2, sum(results["off"]) / 2
        moment = datetime.now(UTC)
        time.sleep(1)
        pitr_seconds = timed_restore(on, on.restore_db_cluster_to_point_in_time, "pitr", SourceDBClusterIdentifier="bench",
                                     RestoreToTime=moment)

        with psycopg.connect(host=host_on, port=port_on, user="master", password=PASSWORD, dbname="bench",
                             sslmode="require") as conn:
            row = conn.execute("SELECT pg_database_size('bench')").fetchone()
            size_mb = (row[0] if row else 0) / 1e6

        print(f"snapshot (CreateDBClusterSnapshot -> available):        {snap_seconds:7.1f} s")
        print(f"restore (RestoreDBClusterFromSnapshot -> available):    {restore_seconds:7.1f} s")
        print(f"point-in-time restore (snapshot + WAL of the TPS runs): {pitr_seconds:7.1f} s")
        print(f"  database {size_mb:.0f} MB: snapshot {size_mb / snap_seconds:.0f} MB/s, "
              f"restore {size_mb / restore_seconds:.0f} MB/s; restore / snapshot ratio "
              f"{restore_seconds / snap_seconds:.2f}")
        print(f"pgbench TPS with WAL archiving: {tps_on:8.1f}  (runs: {results['on']})")
        print(f"pgbench TPS without archiving:  {tps_off:8.1f}  (runs: {results['off']})")
        print(f"  archiving on / off ratio: {tps_on / tps_off:.3f}")


if __name__ == "__main__":
    main()
