"""API throughput: the same boto3 client loops against moto_server and against auroral
(SigV4 verification, IAM policy evaluation and the audit trail all on), in one run.

Each target is driven by THREADS client threads (one boto3 client each) for SECONDS seconds
per call mix; requests/s of each and the ratio auroral/moto are printed.

    python benchmarks/api_throughput.py [--seconds 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from _harness import ACCOUNT, ROOT_KEY, ROOT_SECRET, auroral, moto_server

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:Delete*", "Resource": "*"},
    ],
}


def setup_user(url: str, key: str, secret: str) -> tuple[str, str]:
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                       aws_secret_access_key=secret)
    iam.create_user(UserName="bench")
    iam.put_user_policy(UserName="bench", PolicyName="bench", PolicyDocument=json.dumps(POLICY))
    ak = iam.create_access_key(UserName="bench")["AccessKey"]
    return ak["AccessKeyId"], ak["SecretAccessKey"]


def run(url: str, key: str, secret: str, call: Callable[[Any, Any], Any], seconds: float, threads: int) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        s = boto3.session.Session()
        kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": key,
              "aws_secret_access_key": secret}
        iam, sts = s.client("iam", **kw), s.client("sts", **kw)
        call(iam, sts)  # warm-up
        n = 0
        while time.monotonic() < stop:
            call(iam, sts)
            n += 1
        counts[i] = n

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - start)


MIXES: dict[str, Callable[[Any, Any], Any]] = {
    "iam.get_user": lambda iam, sts: iam.get_user(UserName="bench"),
    "sts.get_caller_identity": lambda iam, sts: sts.get_caller_identity(),
    "iam.list_users": lambda iam, sts: iam.list_users(),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    with moto_server() as murl:
        mkey = setup_user(murl, "testing", "testing")
        for name, call in MIXES.items():
            results.setdefault(name, {})["moto"] = run(murl, *mkey, call, args.seconds, args.threads)
    with auroral() as aurl:
        akey = setup_user(aurl, ROOT_KEY, ROOT_SECRET)
        for name, call in MIXES.items():
            results.setdefault(name, {})["auroral"] = run(aurl, *akey, call, args.seconds, args.threads)
    print(f"account {ACCOUNT}; {args.threads} client threads; {args.seconds:.0f} s per mix; caller: IAM user "
          "with an inline policy (auroral evaluates it on every call)")
    print(f"{'call':<26} {'moto_server req/s':>18} {'auroral req/s':>15} {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:<26} {r['moto']:>18.0f} {r['auroral']:>15.0f} {r['auroral'] / r['moto']:>6.2f}x")


if __name__ == "__main__":
    main()
