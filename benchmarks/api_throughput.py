"""API throughput against moto_server and against auroral (SigV4 verification, IAM policy
evaluation and the audit trail all on), in one run, as an IAM user with an inline policy.

Three measurements per call, each for both servers:

* ``boto3 loop``: one boto3 client calling in a loop (what the issue names). On this 2-core
  machine boto3's own per-call cost (~1 ms of client CPU) is a floor both servers share.
* ``boto3 x P``: P processes, each one boto3 client loop.
* ``signed replay x P``: P processes replaying a request signed once by botocore over a
  keep-alive connection, so that nearly all the CPU goes to the server: its capacity.

    python benchmarks/api_throughput.py [--seconds 4] [--procs 4] [--before CHECKOUT]

``--before`` also runs the auroral of another checkout (``git worktree add /tmp/before <rev>``) in the
same run and prints this auroral's rate over that one's: the cost of a change, measured side by side.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from _harness import ACCOUNT, ROOT_KEY, ROOT_SECRET, auroral, measure, moto_server

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


def run_all(url: str, key: str, secret: str, seconds: float, procs: int) -> dict[tuple[str, str], float]:
    results: dict[tuple[str, str], float] = {}
    for name in CALLS:
        results[(name, "boto3 loop")] = measure(_boto3_worker, 1, url, key, secret, name, seconds)
        results[(name, f"boto3 x {procs}")] = measure(_boto3_worker, procs, url, key, secret, name, seconds)
        results[(name, f"signed replay x {procs}")] = measure(_replay_worker, procs, url, key, secret, name,
                                                             seconds)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--before", type=Path, help="a checkout of another auroral version to compare with")
    args = ap.parse_args()
    with moto_server() as murl:
        moto = run_all(murl, *setup_user(murl, "testing", "testing"), args.seconds, args.procs)
    with auroral() as aurl:
        ours = run_all(aurl, *setup_user(aurl, ROOT_KEY, ROOT_SECRET), args.seconds, args.procs)
    before: dict[tuple[str, str], float] = {}
    if args.before is not None:
        with auroral(src=args.before) as burl:
            before = run_all(burl, *setup_user(burl, ROOT_KEY, ROOT_SECRET), args.seconds, args.procs)
    print(f"account {ACCOUNT}; caller: IAM user with an inline policy; {args.seconds:.0f} s per measurement")
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
