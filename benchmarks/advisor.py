"""Security advisor: how long a full evaluation takes, and how soon a change shows as a finding.

Two measurements (issue 15), each beside a baseline measured in the same run:

1. **A full evaluation** of one account and region: 100 clusters (a writer instance each, a security
   group each with three rules, a KMS key and a master-user secret each), 1,000 IAM principals' customer
   managed policies (what IAM.1 reads) and 10,000 recent logins (the gateway's close records,
   ``auroral.gateway.flows.FlowRecord``, in AURORAL.1/2's window), and the inside of each cluster's
   database as last read (20 roles, 5 written schemas: AURORAL.4 to .9). The ``Snapshot`` is built directly
   from the model classes, so what is timed is the advisor alone:

   * ``checks``: ``auroral.advisor.checks.evaluate`` (every control, the account-wide ones included);
   * ``engine, first``: ``Advisor.refresh`` on an empty store: the checks, every finding built and
     written to a real SQLite store (what a server does once, at its first start);
   * ``engine, one change``: ``Advisor.refresh`` after one resource changed (a cluster's deletion
     protection toggled): the checks, each finding compared with what was written, one rewritten (what
     the server does after every mutating call).

   The baseline (``floor``) is a plain loop that touches each object of the snapshot once: the least any
   evaluation of this snapshot can cost in Python. Median of several runs.

2. **Change to finding** through a real running auroral (``_harness.auroral``): boto3
   ``AuthorizeSecurityGroupIngress`` tcp 5432 from 0.0.0.0/0, then Security Hub ``GetFindings`` polled until
   the group's EC2.19 finding is FAILED; then ``RevokeSecurityGroupIngress`` until it is PASSED again,
   alternating; median over the changes. The baseline is the same EC2 call alone (its round trip, without
   waiting for the finding). auroral re-evaluates before a mutating call's response (``App._after_change``),
   so that call already carries the evaluation; a read of the group (``DescribeSecurityGroups``, which
   re-evaluates nothing) is shown for reference: the difference is what the advisor adds to the call.
   ``--policies N`` first creates N customer managed policies through IAM, so that each re-evaluation has
   an account's worth of resources to go through.

    python benchmarks/advisor.py [--runs 7] [--changes 10] [--policies 0]

Targets (issue 15): a full evaluation <= 1 s; change to finding <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from _harness import ACCOUNT, ROOT_KEY, ROOT_SECRET, auroral

from auroral.advisor.checks import Snapshot, evaluate
from auroral.advisor.controls import FLOW_WINDOW_HOURS
from auroral.advisor.database import DatabaseState, RoleInfo, SchemaWrites
from auroral.advisor.engine import Advisor
from auroral.ec2.model import Rule, SecurityGroup
from auroral.gateway.flows import FlowRecord
from auroral.iam.model import AccessKey, ManagedPolicy, PolicyVersion
from auroral.kms.model import KeyRecord
from auroral.rds.model import Cluster, Instance
from auroral.secrets.model import Rotation, Secret
from auroral.store import Store

REGION = "us-east-1"
CLUSTERS = 100
PRINCIPALS = 1_000
LOGINS = 10_000
TARGET_SECONDS = 1.0
VPC = "vpc-0bench0000000001"


# ---------------------------------------------------------------- the snapshot


def _policy_document(i: int) -> str:
    """A principal's policy: a few statements; every 50th allows "*" on "*" (IAM.1 fails it)."""
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["rds:Describe*", "rds:List*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app-{i}/*"},
        {"Effect": "Deny", "Action": "rds:DeleteDBCluster", "Resource": "*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}},
    ]
    if i % 50 == 0:
        statements.append({"Effect": "Allow", "Action": "*", "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def build_snapshot(now: dt.datetime) -> Snapshot:
    ts = now.timestamp()
    created = now - dt.timedelta(days=30)
    snap = Snapshot(account=ACCOUNT, region=REGION, partition="aws", now=now)
    for i in range(CLUSTERS):
        gid = f"sg-{i:017x}"
        group = SecurityGroup(id=gid, vpc_id=VPC, name=f"db-{i}", description="bench")
        rules = [
            Rule(id=f"sgr-{i:015x}01", group_id=gid, egress=True, protocol="-1", cidr_ipv4="0.0.0.0/0"),
            Rule(id=f"sgr-{i:015x}02", group_id=gid, protocol="tcp", from_port=5432, to_port=5432,
                 cidr_ipv4="0.0.0.0/0" if i % 10 == 0 else "10.0.0.0/16"),
            Rule(id=f"sgr-{i:015x}03", group_id=gid, protocol="tcp", from_port=443, to_port=443,
                 cidr_ipv6="::/0"),
        ]
        snap.groups.append((group, rules))
        key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{i:08d}-0000-4000-8000-000000000000"
        snap.keys.append(KeyRecord(account=ACCOUNT, key_id=key_arn.rpartition("/")[2], arn=key_arn,
                                   created=ts - 86_400, material="sealed", policy="{}",
                                   state="PendingDeletion" if i % 25 == 0 else "Enabled",
                                   deletion_date=ts + 7 * 86_400 if i % 25 == 0 else None))
        cid = f"app-{i}"
        snap.clusters.append(Cluster(
            identifier=cid, account=ACCOUNT, region=REGION, resource_id=f"cluster-BENCH{i:020d}",
            engine_version="16.4", major=16, master_username="postgres" if i % 7 == 0 else "dbadmin",
            created=created, parameter_group="default.aurora-postgresql16", vpc_security_group_ids=[gid],
            storage_encrypted=i % 2 == 0, kms_key_id=key_arn if i % 2 == 0 else None, iam_auth=i % 3 == 0,
            deletion_protection=i % 4 == 0, parameters={"rds.force_ssl": "1" if i % 2 else "0"},
            status="available"))
        snap.instances.append(Instance(
            identifier=f"{cid}-writer", account=ACCOUNT, region=REGION, resource_id=f"db-BENCH{i:022d}",
            cluster_identifier=cid, instance_class="db.r6g.large", engine_version="16.4", created=created,
            availability_zone=f"{REGION}a", is_writer=True, publicly_accessible=i % 5 == 0, status="available"))
        name = f"rds!cluster-{i:08d}"
        snap.secrets.append(Secret(
            account=ACCOUNT, name=name, arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            kms_key_arn=key_arn, customer_key=True, created=ts - (200 if i % 3 == 0 else 10) * 86_400,
            last_changed=ts - 86_400, rotation=Rotation(enabled=i % 3 != 0, every_days=7)))
    for i in range(PRINCIPALS):
        kind = "user" if i % 2 == 0 else "role"
        name = f"{kind}-{i}-policy"
        snap.policies.append(ManagedPolicy(
            name=name, path="/", policy_id=f"ANPABENCH{i:012d}", arn=f"arn:aws:iam::{ACCOUNT}:policy/{name}",
            created=created, updated=created, default_version="v1",
            versions={"v1": PolicyVersion("v1", _policy_document(i), created)}))
    snap.root_keys.append(AccessKey(key_id=ROOT_KEY, user="", secret="", status="Active", created=created))
    window = FLOW_WINDOW_HOURS * 3600
    for n in range(LOGINS):  # oldest first, spread over the window and over the clusters' writers
        i = n % CLUSTERS
        end = int(ts - window + (n + 1) * (window - 60) / LOGINS)
        master = n % 13 == 0
        snap.flows.append(FlowRecord(
            account_id=ACCOUNT, interface_id=f"eni-{i:017x}", srcaddr=f"10.0.{n % 200}.{n % 250 + 1}",
            dstaddr="10.0.255.10", srcport=40_000 + n % 20_000, dstport=5432, start=end - 30, end=end,
            action="ACCEPT", reason="", endpoint_id=f"db-BENCH{i:022d}", connection_id=n, phase="close",
            packets=20, bytes=4_000, packets_out=20, bytes_out=16_000,
            db_user=snap.clusters[i].master_username if master else f"app_{n % 17}",
            application_name=f"svc-{n % 9}" if n % 4 else None, tls=n % 6 != 0, relayed=True))
    for i, c in enumerate(snap.clusters):  # inside each database: 20 roles, a few failing AURORAL.4-9
        roles = [RoleInfo(c.master_username, True, True, True, False, True, False)] + [
            RoleInfo(f"app_{r}", r != 5, i % 11 == 0 and r == 3, i % 9 == 0 and r == 1, r == 7, r != 4,
                     i % 6 == 0 and r == 2) for r in range(19)]
        writes = tuple(SchemaWrites("app", f"s{r}", "dbadmin", f"app_{r}", 3) for r in range(5))
        snap.databases[c.resource_id] = DatabaseState(ts, tuple(roles), writes)
    return snap


def floor(snap: Snapshot) -> int:
    """The baseline: every object of the snapshot touched once (one attribute read), nothing decided."""
    n = 0
    for c in snap.clusters:
        n += c.port
    for i in snap.instances:
        n += i.publicly_accessible
    for g, rules in snap.groups:
        n += len(g.id)
        for r in rules:
            n += r.from_port
    for p in snap.policies:
        n += len(p.default_version)
    for k in snap.root_keys:
        n += len(k.key_id)
    for key in snap.keys:
        n += len(key.state)
    for s in snap.secrets:
        n += s.rotation.enabled
    for f in snap.flows:
        n += f.end
    for d in snap.databases.values():
        n += len(d.roles) + len(d.writes)
    return n


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_evaluation(runs: int) -> float:
    snap = build_snapshot(dt.datetime.now(dt.UTC))
    evaluations = evaluate(snap, with_global=True)
    failed = sum(e.status == "FAILED" for e in evaluations)
    print(f"snapshot: {len(snap.clusters)} clusters, {len(snap.instances)} instances, {len(snap.groups)} groups, "
          f"{len(snap.policies)} policies, {len(snap.keys)} keys, {len(snap.secrets)} secrets, "
          f"{len(snap.flows):,} logins -> {len(evaluations):,} evaluations ({failed:,} FAILED)")
    base = median_seconds(lambda: floor(snap), runs)
    checks = median_seconds(lambda: evaluate(snap, with_global=True), runs)

    tmp = Path(tempfile.mkdtemp(prefix="auroral-bench-advisor-"))
    try:
        def advisor(n: int) -> Advisor:
            return Advisor(Store(tmp / f"store{n}.db"), region=REGION, account=ACCOUNT, partition="aws",
                           snapshot=lambda: snap, with_global=True)

        made = iter(range(10**6))
        first_times: list[float] = []
        written = 0
        for _ in range(max(1, runs // 2)):
            fresh = advisor(next(made))
            start = time.perf_counter()
            written = fresh.refresh(force=True)
            first_times.append(time.perf_counter() - start)
        first = statistics.median(first_times)

        warm = advisor(next(made))
        warm.refresh(force=True)
        target = snap.clusters[1]
        changed: list[int] = []

        def one_change() -> None:
            target.deletion_protection = not target.deletion_protection
            changed.append(warm.refresh(force=True))

        change = median_seconds(one_change, runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if written != len(evaluations) or set(changed) != {1}:
        raise SystemExit(f"unexpected: first evaluation wrote {written}, one change rewrote {set(changed)}")

    print(f"floor (touch each object once): {base * 1000:8.1f} ms")
    print(f"checks                        : {checks * 1000:8.1f} ms   ratio {checks / base:6.1f}x the floor")
    print(f"engine, first ({written:,} written): {first * 1000:8.1f} ms   ratio {first / base:6.1f}x the floor")
    print(f"engine, one change (1 written): {change * 1000:8.1f} ms   ratio {change / base:6.1f}x the floor")
    worst = max(checks, first, change)
    print(f"target full evaluation <= {TARGET_SECONDS:.0f} s: {'met' if worst <= TARGET_SECONDS else 'NOT met'}"
          f" (slowest of the three: {worst * 1000:.0f} ms)")
    return worst


# ---------------------------------------------------------------- change to finding


def client(url: str, service: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=url, region_name=REGION,
                                          aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET)


PERMISSION = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def bench_change(changes: int, policies: int) -> float:
    with auroral() as url:
        ec2, sh, iam = client(url, "ec2"), client(url, "securityhub"), client(url, "iam")
        for i in range(policies):
            iam.create_policy(PolicyName=f"bench-{i}", PolicyDocument=_policy_document(i))
        group = ec2.create_security_group(GroupName="bench-db", Description="bench")["GroupId"]
        arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}"
        filters = {"ComplianceSecurityControlId": [{"Value": "EC2.19", "Comparison": "EQUALS"}],
                   "ResourceId": [{"Value": arn, "Comparison": "EQUALS"}]}

        def status() -> str | None:
            found = sh.get_findings(Filters=filters)["Findings"]
            return str(found[0]["Compliance"]["Status"]) if found else None

        deadline = time.monotonic() + 30
        while status() != "PASSED":  # the new group's finding, and warm connections
            if time.monotonic() > deadline:
                raise SystemExit("no PASSED EC2.19 finding for a new group")
            time.sleep(0.05)
        total = sh.get_findings(MaxResults=100)
        print(f"server: {len(total['Findings'])}{'+' if total.get('NextToken') else ''} findings, "
              f"{policies} customer managed policies created first")

        reads: list[float] = []
        for _ in range(changes):
            start = time.perf_counter()
            ec2.describe_security_groups(GroupIds=[group])
            reads.append(time.perf_counter() - start)
        calls: list[float] = []
        latencies: list[float] = []
        polls: list[int] = []
        for n in range(changes):
            open_it = n % 2 == 0
            start = time.perf_counter()
            if open_it:
                ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=PERMISSION)
            else:
                ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=PERMISSION)
            calls.append(time.perf_counter() - start)
            want, tries = ("FAILED" if open_it else "PASSED"), 1
            while status() != want:
                tries += 1
                if time.perf_counter() - start > 30:
                    raise SystemExit(f"EC2.19 never became {want}")
            latencies.append(time.perf_counter() - start)
            polls.append(tries)
    call, latency = statistics.median(calls), statistics.median(latencies)
    print(f"DescribeSecurityGroups (read) : {statistics.median(reads) * 1000:8.1f} ms median of {changes}")
    print(f"EC2 call alone (baseline)     : {call * 1000:8.1f} ms median of {changes}")
    print(f"change to finding             : {latency * 1000:8.1f} ms median of {changes} "
          f"(max {max(latencies) * 1000:.1f} ms; GetFindings calls per change: {statistics.median(polls):g})"
          f"   ratio {latency / call:5.1f}x the call")
    print(f"target change to finding <= {TARGET_SECONDS:.0f} s: {'met' if latency <= TARGET_SECONDS else 'NOT met'}")
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--policies", type=int, default=0)
    parser.add_argument("--skip-server", action="store_true", help="only the evaluation (no server)")
    args = parser.parse_args()
    bench_evaluation(args.runs)
    if not args.skip_server:
        bench_change(args.changes, args.policies)


if __name__ == "__main__":
    main()
