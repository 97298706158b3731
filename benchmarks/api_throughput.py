"""API throughput against moto_server and against auroral (SigV4 verification, IAM policy
evaluation and the audit trail all on), in one run, as an IAM user with an inline policy.

Three measurements per call, each for both servers:

* ``boto3 loop``: one boto3 client calling in a loop (what the issue names). On this 2-core
  machine boto3's own per-call cost (~1 ms of client CPU) is a floor both servers share.
* ``boto3 x P``: P processes, each one boto3 client loop.
* ``signed replay x P``: P processes replaying a request signed once by botocore over a
  keep-alive connection, so that nearly all the CPU goes to the server: its capacity.
* ``server CPU/request``: the server process's own CPU time (``/proc/<pid>/stat``) over N replayed
  requests, one connection: what a request costs the server, the figure least disturbed by a busy
  machine (a rate is shared with whatever else runs; CPU time per request is not).

    python benchmarks/api_throughput.py [--seconds 4] [--procs 4] [--rounds 3] [--before CHECKOUT]

``--before`` also runs the auroral of another checkout (``git worktree add /tmp/before <rev>``) in the
same run and prints this auroral's rate over that one's: the cost of a change, measured side by side.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from _harness import ACCOUNT, PIDS, ROOT_KEY, ROOT_SECRET, auroral, cpu_seconds, measure, moto_server

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        {"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:Delete*", "Resource": "*"},
    ],
}

CALLS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    # name: (service, form body, boto3 call)
    "iam.get_user": ("iam", "Action=GetUser&UserName=bench&Version=2010-05-08",
                     lambda c: c.get_user(UserName="bench")),
    "sts.get_caller_identity": ("sts", "Action=GetCallerIdentity&Version=2011-06-15",
                                lambda c: c.get_caller_identity()),
    # an RDS resource named by the request: resolved to its canonical ARN before it is authorized
    "rds.describe_cluster_pg": ("rds", "Action=DescribeDBClusterParameterGroups&DBClusterParameterGroupName=Bench-PG"
                                "&Version=2014-10-31",
                                lambda c: c.describe_db_cluster_parameter_groups(DBClusterParameterGroupName="Bench-PG")),
}


def setup_user(url: str, key: str, secret: str) -> tuple[str, str]:
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                       aws_secret_access_key=secret)
    iam.create_user(UserName="bench")
    iam.put_user_policy(UserName="bench", PolicyName="bench", PolicyDocument=json.dumps(POLICY))
    boto3.client("rds", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                 aws_secret_access_key=secret).create_db_cluster_parameter_group(
        DBClusterParameterGroupName="bench-pg", DBParameterGroupFamily="aurora-postgresql16", Description="bench")
    ak = iam.create_access_key(UserName="bench")["AccessKey"]
    return ak["AccessKeyId"], ak["SecretAccessKey"]


def _boto3_worker(url: str, key: str, secret: str, name: str, seconds: float, out: Any) -> None:
    service, _body, call = CALLS[name]
    client = boto3.session.Session().client(service, endpoint_url=url, region_name="us-east-1",
                                            aws_access_key_id=key, aws_secret_access_key=secret)
    call(client)
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        call(client)
        n += 1
    out.put(n)


def _replay_worker(url: str, key: str, secret: str, name: str, seconds: float, out: Any) -> None:
    service, body, _call = CALLS[name]
    host = urllib.parse.urlsplit(url).netloc
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    conn = http.client.HTTPConnection(host)
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"{name}: HTTP {resp.status}")
        n += 1
    out.put(n)


Target = tuple[str, str, str]  # url, access key, secret key
CPU_REQUESTS = 3000


def server_cpu_ms(url: str, key: str, secret: str, name: str) -> float:
    """Milliseconds of the server's CPU per request, over CPU_REQUESTS replayed requests."""
    service, body, _call = CALLS[name]
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc)
    pid = PIDS[url]
    before = cpu_seconds(pid)
    for _ in range(CPU_REQUESTS):
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"{name}: HTTP {resp.status}")
    conn.close()
    return (cpu_seconds(pid) - before) * 1000 / CPU_REQUESTS


def modes(procs: int) -> list[tuple[str, Callable[..., None], int]]:
    return [("boto3 loop", _boto3_worker, 1), (f"boto3 x {procs}", _boto3_worker, procs),
            (f"signed replay x {procs}", _replay_worker, procs)]


def run_interleaved(targets: dict[str, Target], seconds: float, procs: int,
                    rounds: int) -> dict[str, dict[tuple[str, str], float]]:
    """Every measurement of every target, the targets in turn (A B A B ...) for ``rounds`` rounds so
    that a drift in the machine's speed reaches them alike; the median of each target's rounds."""
    samples: dict[str, dict[tuple[str, str], list[float]]] = {t: {} for t in targets}
    for name in CALLS:
        for mode, worker, n in modes(procs):
            for _ in range(rounds):
                for target, (url, key, secret) in targets.items():
                    rate = measure(worker, n, url, key, secret, name, seconds)
                    samples[target].setdefault((name, mode), []).append(rate)
        for _ in range(rounds):
            for target, (url, key, secret) in targets.items():
                # shown as requests per CPU-second, so that every row reads "more is better"
                per_cpu_second = 1000 / server_cpu_ms(url, key, secret, name)
                samples[target].setdefault((name, "per server CPU-second"), []).append(per_cpu_second)
    return {t: {k: statistics.median(v) for k, v in s.items()} for t, s in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds per measurement (median)")
    ap.add_argument("--before", type=Path, help="a checkout of another auroral version to compare with")
    args = ap.parse_args()
    with ExitStack() as stack:
        murl = stack.enter_context(moto_server())
        aurl = stack.enter_context(auroral())
        targets: dict[str, Target] = {
            "moto": (murl, *setup_user(murl, "testing", "testing")),
            "auroral": (aurl, *setup_user(aurl, ROOT_KEY, ROOT_SECRET)),
        }
        if args.before is not None:
            burl = stack.enter_context(auroral(src=args.before))
            targets["before"] = (burl, *setup_user(burl, ROOT_KEY, ROOT_SECRET))
        results = run_interleaved(targets, args.seconds, args.procs, args.rounds)
    moto, ours, before = results["moto"], results["auroral"], results.get("before")
    print(f"account {ACCOUNT}; caller: IAM user with an inline policy; {args.seconds:.0f} s per measurement, "
          f"median of {args.rounds} interleaved round(s)")
    head = f"{'call':<25} {'client':<20} {'moto_server req/s':>18} {'auroral req/s':>14} {'ratio':>7}"
    print(head + (f" {'before req/s':>13} {'now/before':>10}" if before else ""))
    for (name, mode), m in moto.items():
        a = ours[(name, mode)]
        row = f"{name:<25} {mode:<20} {m:>18.0f} {a:>14.0f} {a / m:>6.2f}x"
        if before:
            b = before[(name, mode)]
            row += f" {b:>13.0f} {a / b:>9.2f}x"
        print(row)


if __name__ == "__main__":
    main()
