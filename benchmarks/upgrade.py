"""Major version upgrade benchmark: ModifyDBCluster EngineVersion (15 -> 16, AllowMajorVersionUpgrade,
ApplyImmediately) of a cluster holding a pgbench database of scale 70 (about 1 GB), until the cluster
endpoint answers ``SELECT 1`` on the new major, beside a raw ``pg_upgrade`` by hand of the same amount of
data with the same binaries (copy mode, the same ``-j``), in the same run, plus the start of the new
server and a ``SELECT 1`` (the by-hand time includes the ``initdb`` of the new cluster, as auroral's does).

    python benchmarks/upgrade.py [--scale 70] [--from 15.4] [--to 16.4]

Both majors come from ``AURORAL_PG_BINDIR`` as given, else are fetched (``auroral/engine/fetch.py``) into
``AURORAL_ENGINE_CACHE`` (default ``$TMPDIR/auroral-bench-engines-<uid>``), which auroral uses too, so both
sides run the same binaries; and a pgbench with TLS (Debian's ``postgresql-client``). Run as root (auroral's default). Prints both times and the ratio auroral/by hand.
The data is generated on the server (``pgbench -i -I dtGvp``) in both cases.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT_KEY, ROOT_SECRET, auroral

from auroral.engine import binaries, fetch, osuser

PASSWORD = "Bench-pass-123"
CACHE = Path(os.environ.get(fetch.ENV_CACHE) or Path(tempfile.gettempdir()) / f"auroral-bench-engines-{os.geteuid()}")


def installation(major: int) -> binaries.Installation:
    if not os.environ.get(binaries.ENV_BINDIR):
        fetch.fetch(major, CACHE, progress=print)
    for inst in binaries.available(refresh=True, fetched=CACHE):
        if inst.major == major:
            return inst
    raise SystemExit(f"no PostgreSQL {major} installation (set AURORAL_PG_BINDIR)")


def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (psycopg.Error, KeyError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def with_auroral(scale: int, source: str, target: str) -> tuple[float, float]:
    """(seconds to load the data, seconds of the upgrade until SELECT 1 answers on the new major)."""
    env = {fetch.ENV_CACHE: str(CACHE), binaries.ENV_BINDIR: os.environ.get(binaries.ENV_BINDIR, "")}
    with auroral(env) as url:
        rds = boto3.client("rds", endpoint_url=url, region_name="us-east-1", aws_access_key_id=ROOT_KEY,
                           aws_secret_access_key=ROOT_SECRET)
        rds.create_db_cluster(DBClusterIdentifier="bench", Engine="aurora-postgresql", EngineVersion=source,
                              MasterUsername="master", MasterUserPassword=PASSWORD, DatabaseName="bench")
        rds.create_db_instance(DBInstanceIdentifier="bench-w", DBClusterIdentifier="bench",
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        waiter = {"Delay": 1, "MaxAttempts": 600}
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="bench-w", WaiterConfig=waiter)
        cluster = rds.describe_db_clusters(DBClusterIdentifier="bench")["DBClusters"][0]
        endpoint, port = cluster["Endpoint"], cluster["Port"]
        pgbench = shutil.which("pgbench")
        if pgbench is None:
            raise SystemExit("pgbench with TLS support not found: apt-get install postgresql-client")
        t0 = time.perf_counter()
        subprocess.run([pgbench, "-i", "-I", "dtGvp", "-s", str(scale), "-q", "-h", endpoint, "-p", str(port),
                        "-U", "master", "bench"], check=True, capture_output=True,
                       env={**os.environ, "PGPASSWORD": PASSWORD, "PGSSLMODE": "require"})
        load = time.perf_counter() - t0

        def new_major_answers() -> bool:
            if rds.describe_db_clusters(DBClusterIdentifier="bench")["DBClusters"][0]["Status"] != "available":
                return False
            with psycopg.connect(host=endpoint, port=port, user="master", password=PASSWORD, dbname="bench",
                                 sslmode="require", connect_timeout=5) as conn:
                conn.execute("SELECT 1").fetchone()
                return conn.info.server_version // 10000 == int(target.split(".")[0])

        t0 = time.perf_counter()
        rds.modify_db_cluster(DBClusterIdentifier="bench", EngineVersion=target, AllowMajorVersionUpgrade=True,
                              ApplyImmediately=True)
        until(new_major_answers, 3600, "the upgraded cluster")
        upgrade = time.perf_counter() - t0
        with psycopg.connect(host=endpoint, port=port, user="master", password=PASSWORD, dbname="bench",
                             sslmode="require") as conn:
            rows = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
            assert rows == (scale * 100000,), rows
    return load, upgrade


def by_hand(scale: int, old: binaries.Installation, new: binaries.Installation) -> tuple[float, float]:
    """The same with pg_upgrade by hand, as auroral's service user: (load seconds, upgrade seconds)."""
    runas = osuser.service_user()
    root = Path(tempfile.mkdtemp(prefix="auroral-upg-"))
    os.chmod(root, 0o711)
    osuser.check_traversable(root, runas)
    old = osuser.runnable(old, runas, root / "bin")
    new = osuser.runnable(new, runas, root / "bin")
    kwargs = runas.subprocess_kwargs()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    sock = root / "sock"
    work = root / "work"
    for d in (sock, work, root / "old", root / "new"):
        osuser.make_private_dir(d, runas)

    def run(*args: str | Path, cwd: Path = Path("/")) -> None:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, env=env, cwd=cwd, **kwargs)

    def start(inst: binaries.Installation, pgdata: Path) -> None:
        run(inst.tool("pg_ctl"), "-D", pgdata, "-w", "-l", sock / "log", "-o",
            f"-c listen_addresses='' -c unix_socket_directories={sock} -p 6432", "start")

    try:
        def initdb(inst: binaries.Installation, pgdata: Path) -> None:
            run(inst.tool("initdb"), "-D", pgdata, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--locale=C.UTF-8", "--wal-segsize=1")

        initdb(old, root / "old")
        start(old, root / "old")
        t0 = time.perf_counter()
        run(old.tool("pgbench"), "-i", "-I", "dtGvp", "-s", str(scale), "-q", "-h", sock, "-p", "6432",
            "-U", "postgres", "postgres")
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(old.tool("pg_ctl"), "-D", root / "old", "-m", "fast", "-w", "stop")
        initdb(new, root / "new")  # part of the upgrade: the new major's empty cluster
        run(new.tool("pg_upgrade"), "-b", old.bindir, "-B", new.bindir, "-d", root / "old", "-D", root / "new",
            "-U", "postgres", "-s", sock, "-j", str(os.cpu_count() or 1), cwd=work)
        start(new, root / "new")
        with psycopg.connect(host=str(sock), port=6432, user="postgres", dbname="postgres") as conn:
            conn.execute("SELECT 1").fetchone()
        upgrade = time.perf_counter() - t0
        run(new.tool("pg_ctl"), "-D", root / "new", "-m", "fast", "-w", "stop")
        return load, upgrade
    finally:
        for pgdata in (root / "old", root / "new"):
            if (pgdata / "postmaster.pid").exists():
                subprocess.run([str(new.tool("pg_ctl")), "-D", str(pgdata), "-m", "immediate", "stop"],
                               capture_output=True, env=env, cwd="/", **kwargs)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=70)
    parser.add_argument("--from", dest="source", default="15.4")
    parser.add_argument("--to", dest="target", default="16.4")
    args = parser.parse_args()
    old, new = installation(int(args.source.split(".")[0])), installation(int(args.target.split(".")[0]))
    print(f"pgbench scale {args.scale}; PostgreSQL {old.version} -> {new.version}; {os.cpu_count()} CPUs")
    hand_load, hand = by_hand(args.scale, old, new)
    print(f"by hand: load {hand_load:.1f} s; stop + initdb + pg_upgrade + start + SELECT 1: {hand:.1f} s")
    load, mine = with_auroral(args.scale, args.source, args.target)
    print(f"auroral: load {load:.1f} s; ModifyDBCluster {args.source} -> {args.target} until SELECT 1 on the "
          f"new major: {mine:.1f} s")
    print(f"ratio auroral/by hand: {mine / hand:.2f}")


if __name__ == "__main__":
    main()
