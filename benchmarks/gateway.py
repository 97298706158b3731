"""The endpoint gateway against the usual alternatives, all with TLS, in one run:

    (a) direct   — Debian's PostgreSQL 15 (built with OpenSSL) on 127.0.0.1 with ssl=on
    (b) pgbouncer — Debian's PgBouncer with client TLS (client_tls_sslmode=require) in front of (a)
    (c) auroral  — an auroral cluster endpoint (TLS; security-group rules and public access on, via the API),
                   relayed by the native relay (the default), and (d) the same with
                   ``AURORAL_GATEWAY_RELAY=python`` (auroral-py), each from its own ``auroral up``
    with --priority, also (e) pgbouncer-10: a second PgBouncer at niceness -10, the niceness auroral's
                   threads run at (``AURORAL_NICE``, see auroral/priority.py), and (f) auroral-nice0: auroral
                   with ``AURORAL_NICE=0``, so the run shows what the priority is worth on either side

    pgbench -S    -c 8 -j 4 -T <seconds>   TPS, and the ratios auroral/pgbouncer, auroral/direct

Each measure runs every target ``--rounds`` times, interleaved in rotated order; medians are printed,
and each ratio is the median of the rounds' ratios (these machines are shared and drift).
    pgbench -S -C -c 8 -j 8 -T <seconds>   new connections per second (one per transaction; pgbench
                                           connects synchronously, so one thread per client)
    pgbench -C -f 'SELECT 1' as an IAM user     IAM-token logins per second, tokens from botocore; beside
                                           them "direct-trust": the same against (a) as a user that pg_hba
                                           trusts (TLS, no credential checked), what a login can reach

Needs root (PostgreSQL and PgBouncer run as ``auroral-pg``) and ``apt-get install -y postgresql pgbouncer``.
(a)/(b) run PostgreSQL 15, (c)/(d) the PostgreSQL auroral serves (the embedded wheel's 18): same scale,
same queries, and (a) gets auroral's server settings that matter here (``shared_buffers=16MB``: the
scale-4 tables do not fit, as in auroral), so the servers differ by version only.

    python benchmarks/gateway.py [--seconds 20] [--clients 8] [--rounds 3] [--only NAME ...] [--priority]
                                 [--measure tps|connections|logins ...]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT_KEY, ROOT_SECRET, auroral, free_port

PG15 = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "Bench-pass-1"
REGION = "us-east-1"


def pg_user() -> dict[str, Any]:
    try:
        user = pwd.getpwnam("auroral-pg")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "auroral-pg"], check=True)
        user = pwd.getpwnam("auroral-pg")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def own(run_as: dict[str, Any], *paths: Path) -> None:
    for p in paths:
        os.chown(p, run_as["user"], run_as["group"])


def self_signed(root: Path, run_as: dict[str, Any]) -> tuple[Path, Path]:
    cert, key = root / "server.crt", root / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    own(run_as, cert, key)
    return cert, key


def wait_for(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)
    time.sleep(0.3)


def start_postgres(root: Path, run_as: dict[str, Any], port: int) -> tuple[subprocess.Popen[bytes], Path]:
    if not (PG15 / "postgres").exists():
        raise SystemExit("needs Debian's PostgreSQL (with OpenSSL): apt-get install -y postgresql")
    os.chmod(root, 0o711)
    data, sock, pwfile = root / "data", root / "sock", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    for p in (data, sock):
        p.mkdir(mode=0o700)
    own(run_as, data, sock, pwfile)
    cert, key = self_signed(root, run_as)
    subprocess.run([str(PG15 / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync"],
                   check=True, capture_output=True, **run_as)
    (data / "pg_hba.conf").write_text("local all all scram-sha-256\nhostssl all trustuser 127.0.0.1/32 trust\n"
                                      "hostssl all all 127.0.0.1/32 scram-sha-256\n")
    proc = subprocess.Popen(
        [str(PG15 / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={sock}", "-c", "max_connections=100", "-c", "ssl=on",
         "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}", "-c", "fsync=off",
         "-c", "synchronous_commit=off", "-c", "shared_buffers=16MB"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)
    wait_for(sock / f".s.PGSQL.{port}", proc, "postgres")
    return proc, sock


def start_pgbouncer(root: Path, run_as: dict[str, Any], sock: Path, pg_port: int,
                    port: int, name: str = "pgbouncer", nice: int = 0) -> subprocess.Popen[bytes]:
    """PgBouncer as ``name`` (its files are ``<root>/<name>.*``), at niceness ``nice``."""
    cert, key = root / "server.crt", root / "server.key"
    users, ini, logfile = root / f"{name}.users", root / f"{name}.ini", root / f"{name}.log"
    users.write_text(f'"postgres" "{PASSWORD}"\n')
    ini.write_text(f"""[databases]
postgres = host={sock} port={pg_port} dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {users}
pool_mode = session
max_client_conn = 200
default_pool_size = 20
client_tls_sslmode = require
client_tls_cert_file = {cert}
client_tls_key_file = {key}
logfile = {logfile}
""")
    logfile.touch()
    own(run_as, users, ini, logfile)
    proc = subprocess.Popen(["pgbouncer", str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD,
                                 dbname="postgres", sslmode="require", connect_timeout=2):
                break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                log = logfile.read_text()[-2000:]
                raise RuntimeError(f"pgbouncer did not start: {log}") from None
            time.sleep(0.1)
    if nice:  # as root, from outside (it runs as auroral-pg, which may not lower its own niceness)
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
    return proc


def pgbench(args: list[str], env: dict[str, str]) -> float:
    out = subprocess.run(["pgbench", *args], capture_output=True, text=True, env={**os.environ, **env})
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding connections)", out.stdout)
    m = m or re.search(r"tps = ([\d.]+)", out.stdout)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"pgbench {args} failed: {out.stderr[-2000:]}")
    return float(m.group(1))


def create_auroral_db(url: str) -> tuple[Any, str, int, str]:
    """A cluster with IAM auth on, in a security group that admits the default VPC's CIDR (where auroral
    places this machine's loopback clients) and 127.0.0.0/8 on the cluster port; the instance is publicly
    accessible (the default VPC has an internet gateway)."""
    kw: dict[str, Any] = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": ROOT_KEY,
                          "aws_secret_access_key": ROOT_SECRET}
    rds, ec2 = boto3.client("rds", **kw), boto3.client("ec2", **kw)
    default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    vpc, cidr = default["VpcId"], default["CidrBlock"]
    attached = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
    if not attached["InternetGateways"]:  # AWS's default VPCs come with one
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    sg = ec2.create_security_group(GroupName="bench-db", Description="bench", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "127.0.0.0/8"}, {"CidrIp": cidr}]}])
    rds.create_db_cluster(DBClusterIdentifier="bench", Engine="aurora-postgresql", EngineVersion="16.4",
                          MasterUsername="master", MasterUserPassword=PASSWORD, DatabaseName="bench",
                          VpcSecurityGroupIds=[sg], EnableIAMDatabaseAuthentication=True)
    rds.create_db_instance(DBInstanceIdentifier="bench-1", DBClusterIdentifier="bench", Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large", PubliclyAccessible=True)
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="bench-1",
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    cluster = rds.describe_db_clusters(DBClusterIdentifier="bench")["DBClusters"][0]
    return kw, cluster["Endpoint"], cluster["Port"], cluster["DbClusterResourceId"]


def iam_logins(kw: dict[str, Any], host: str, port: int, resource_id: str, seconds: float,
               clients: int, root: Path, *, setup: bool = True) -> float:
    """IAM-token logins per second: ``pgbench -C`` (a new connection, TLS and a token login, per
    transaction of ``SELECT 1``) as ``iamuser``, whose password is a token from unmodified botocore's
    ``generate_db_auth_token``, signed by an IAM user allowed ``rds-db:connect`` (a token can be used
    for any number of logins within its 15 minutes)."""
    iam = boto3.client("iam", **kw)
    if setup:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds-db:connect",
                  "Resource": f"arn:aws:rds-db:{REGION}:*:dbuser:{resource_id}/iamuser"}]}
        iam.create_user(UserName="bench-iam")
        iam.put_user_policy(UserName="bench-iam", PolicyName="db", PolicyDocument=json.dumps(policy))
        with psycopg.connect(host=host, port=port, user="master", password=PASSWORD, dbname="bench",
                             sslmode="require", autocommit=True) as conn:
            conn.execute("CREATE ROLE iamuser LOGIN")
            conn.execute("GRANT rds_iam TO iamuser")
    key = iam.create_access_key(UserName="bench-iam")["AccessKey"]
    for old in iam.list_access_keys(UserName="bench-iam")["AccessKeyMetadata"]:  # IAM allows two keys a user
        if old["AccessKeyId"] != key["AccessKeyId"]:
            iam.delete_access_key(UserName="bench-iam", AccessKeyId=old["AccessKeyId"])
    rds = boto3.client("rds", endpoint_url=kw["endpoint_url"], region_name=REGION,
                       aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    token = rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername="iamuser", Region=REGION)
    env = {"PGHOST": host, "PGPORT": str(port), "PGUSER": "iamuser", "PGPASSWORD": token, "PGDATABASE": "bench",
           "PGSSLMODE": "require"}
    return logins_per_second(env, seconds, clients, root)


def logins_per_second(env: dict[str, str], seconds: float, clients: int, root: Path) -> float:
    """``pgbench -C`` of ``SELECT 1``: a new connection (TLS and a login) per transaction."""
    script = root / "select1.sql"
    script.write_text("SELECT 1;\n")
    return pgbench(["-C", "-n", "-f", str(script), "-c", str(clients), "-j", str(clients), "-T", str(int(seconds))], env)


# name -> the environment of its own `auroral up`, or None for a baseline
TARGETS: dict[str, dict[str, str] | None] = {
    "direct": None, "pgbouncer": None, "pgbouncer-10": None,
    "auroral": {"AURORAL_GATEWAY_RELAY": "native"},
    "auroral-py": {"AURORAL_GATEWAY_RELAY": "python"},
    "auroral-nice0": {"AURORAL_GATEWAY_RELAY": "native", "AURORAL_NICE": "0"},
}
PRIORITY_TARGETS = ("pgbouncer-10", "auroral-nice0")
MEASURES = ["tps", "connections", "logins"]
RATIOS = [("auroral", "pgbouncer"), ("auroral", "direct"), ("auroral", "direct-trust"), ("auroral", "auroral-py"), ("auroral-py", "pgbouncer"),
          ("auroral-py", "direct"), ("auroral", "pgbouncer-10"), ("auroral-nice0", "pgbouncer"),
          ("auroral", "auroral-nice0")]


def print_ratios(runs: dict[str, list[float]]) -> None:
    for a, b in RATIOS:  # the median of each round's ratio: robust to the machine's drift
        if a in runs and b in runs:
            ratio = statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))
            print(f"  {a}/{b}: {ratio:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each target, interleaved; medians are shown")
    ap.add_argument("--only", choices=list(TARGETS), action="append")
    ap.add_argument("--measure", choices=MEASURES, action="append", help="only these measures (default: all)")
    ap.add_argument("--priority", action="store_true",
                    help="also PgBouncer at niceness -10 (as auroral's threads run) and auroral at niceness 0")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (PostgreSQL and PgBouncer run as auroral-pg)")
    run_as = pg_user()
    root = Path(tempfile.mkdtemp(prefix="auroral-bench-gateway-"))
    pg_port, bouncer_port, bouncer10_port = free_port(), free_port(), free_port()
    wanted = [t for t in TARGETS if (not opts.only or t in opts.only) and (opts.priority or t not in PRIORITY_TARGETS)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg, sock = start_postgres(root, run_as, pg_port)
        procs.append(pg)
        procs.append(start_pgbouncer(root, run_as, sock, pg_port, bouncer_port))
        if "pgbouncer-10" in wanted:
            procs.append(start_pgbouncer(root, run_as, sock, pg_port, bouncer10_port, "pgbouncer-10", nice=-10))
        base = {"PGPASSWORD": PASSWORD, "PGDATABASE": "postgres", "PGSSLMODE": "require"}
        direct = {**base, "PGHOST": "127.0.0.1", "PGPORT": str(pg_port), "PGUSER": "postgres"}
        subprocess.run(["pgbench", "-i", "-s", "4", "-q"], env={**os.environ, **direct}, check=True,
                       capture_output=True)
        with ExitStack() as stack:
            bouncer = {**base, "PGHOST": "127.0.0.1", "PGUSER": "postgres"}
            targets = {"direct": direct, "pgbouncer": {**bouncer, "PGPORT": str(bouncer_port)},
                       "pgbouncer-10": {**bouncer, "PGPORT": str(bouncer10_port)}}
            dbs: dict[str, tuple[Any, str, int, str]] = {}
            for name, env in TARGETS.items():
                if name not in wanted or env is None:
                    continue
                url = stack.enter_context(auroral(env))
                kw, host, port, rid = dbs[name] = create_auroral_db(url)
                ours = {**base, "PGHOST": host, "PGPORT": str(port), "PGUSER": "master", "PGDATABASE": "bench"}
                init = subprocess.run(["pgbench", "-i", "-s", "4", "-q"], env={**os.environ, **ours},
                                      capture_output=True, text=True)
                if init.returncode != 0:
                    raise RuntimeError(f"pgbench -i on {name} failed: {init.stderr[-2000:]}")
                targets[name] = ours
            targets = {k: v for k, v in targets.items() if k in wanted}
            c, s = str(opts.clients), str(opts.seconds)
            measures = opts.measure or MEASURES
            for measure, label, args in (
                    ("tps", "pgbench -S (TPS)", ["-S", "-c", c, "-j", "4", "-T", s]),
                    ("connections", "pgbench -S -C (new connections/s)", ["-S", "-C", "-c", c, "-j", c, "-T", s])):
                if measure not in measures:
                    continue
                print(f"{label}, {c} clients, {s} s, TLS everywhere, {opts.rounds} rounds (median)")
                runs: dict[str, list[float]] = {name: [] for name in targets}
                names = list(targets)
                for r in range(opts.rounds):  # every target once a round, in a rotated order
                    for name in names[r % len(names):] + names[:r % len(names)]:
                        runs[name].append(pgbench(args, targets[name]))
                for name, values in runs.items():
                    shown = " ".join(f"{v:.0f}" for v in values)
                    print(f"  {name:13s} {statistics.median(values):10.0f}   ({shown})", flush=True)
                print_ratios(runs)
            if "logins" not in measures:
                return
            print(f"IAM-token logins/s (pgbench -C, {opts.clients} clients, TLS, {opts.rounds} rounds (median)")
            # direct-trust: a TLS login to (a) that checks no credential at all (pg_hba "trust" for
            # trustuser), the most a login that forks a backend can do on this machine at the moment
            names = list(dbs) + (["direct-trust"] if "direct" in targets else [])
            logins: dict[str, list[float]] = {name: [] for name in names}
            if "direct-trust" in logins:
                with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", password=PASSWORD,
                                     dbname="postgres", sslmode="require", autocommit=True) as conn:
                    conn.execute("CREATE ROLE trustuser LOGIN")
            for r in range(opts.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    if name == "direct-trust":
                        env = {**targets["direct"], "PGUSER": "trustuser", "PGPASSWORD": ""}
                        logins[name].append(logins_per_second(env, opts.seconds, opts.clients, root))
                        continue
                    kw, host, port, rid = dbs[name]
                    logins[name].append(iam_logins(kw, host, port, rid, opts.seconds, opts.clients, root,
                                                   setup=r == 0))
            for name, values in logins.items():
                shown = " ".join(f"{v:.0f}" for v in values)
                print(f"  {name:13s} {statistics.median(values):10.0f}   ({shown})", flush=True)
            print_ratios(logins)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
