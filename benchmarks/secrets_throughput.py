"""Secrets Manager throughput: GetSecretValue through boto3 against moto_server and against auroral
(SigV4 verification, IAM policy evaluation, the KMS key policy and real AES-256-GCM envelope
decryption all on; the caller is an IAM user with an inline policy, not root), in one run; then the
time one full rotation of a managed master password takes (ModifyDBCluster RotateMasterUserPassword
until DescribeDBClusters shows SecretStatus ``active`` again: AWSPENDING staged, ALTER ROLE, a real
login, AWSCURRENT moved), median of ROTATIONS.

Three measurements, each for both servers (as in ``api_throughput.py``; this machine's boto3 costs
about 1 ms of client CPU per call, a floor both servers share):

* ``boto3 loop``: one boto3 client calling in a loop;
* ``boto3 x P``: P processes, each a boto3 client loop;
* ``signed replay x P``: P processes replaying one botocore-signed request over keep-alive
  connections, so nearly all the CPU goes to the server: its capacity.

    python benchmarks/secrets_throughput.py [--seconds 4] [--procs 4] [--rotations 5]

Targets (issue 4): auroral/moto >= 5x; one rotation <= 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
import urllib.parse
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from _harness import ACCOUNT, ROOT_KEY, ROOT_SECRET, auroral, measure, moto_server

SECRET_NAME = "bench/db-password"
VALUE = json.dumps({"username": "app", "password": "Bench-pass-0123456789"})


def client(url: str, service: str, key: str, secret: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=url, region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=secret)


def setup(url: str, key: str, secret: str) -> tuple[str, str]:
    """The secret (default key alias/aws/secretsmanager) and an IAM user allowed to read only it."""
    arn = client(url, "secretsmanager", key, secret).create_secret(Name=SECRET_NAME, SecretString=VALUE)["ARN"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}},
        {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"},
    ]}
    iam = client(url, "iam", key, secret)
    iam.create_user(UserName="bench")
    iam.put_user_policy(UserName="bench", PolicyName="read-secret", PolicyDocument=json.dumps(policy))
    ak = iam.create_access_key(UserName="bench")["AccessKey"]
    return ak["AccessKeyId"], ak["SecretAccessKey"]


def _boto3_worker(url: str, key: str, secret: str, seconds: float, out: Any) -> None:
    sm = client(url, "secretsmanager", key, secret)
    assert sm.get_secret_value(SecretId=SECRET_NAME)["SecretString"] == VALUE  # warm-up and check
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        sm.get_secret_value(SecretId=SECRET_NAME)
        n += 1
    out.put(n)


def _replay_worker(url: str, key: str, secret: str, seconds: float, out: Any) -> None:
    """One request signed once by botocore, replayed over a keep-alive connection: nearly all the
    CPU goes to the server (each replay is still verified, authorized and decrypted in full)."""
    body = json.dumps({"SecretId": SECRET_NAME})
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "secretsmanager",
                            "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc)
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or json.loads(data)["SecretString"] != VALUE:
            raise SystemExit(f"GetSecretValue: HTTP {resp.status}: {data[:200]!r}")
        n += 1
    out.put(n)


def run_all(url: str, key: str, secret: str, seconds: float, procs: int) -> dict[str, float]:
    return {
        "boto3 loop": measure(_boto3_worker, 1, url, key, secret, seconds),
        f"boto3 x {procs}": measure(_boto3_worker, procs, url, key, secret, seconds),
        f"signed replay x {procs}": measure(_replay_worker, procs, url, key, secret, seconds),
    }


def rotation_times(url: str, rounds: int) -> list[float]:
    rds = client(url, "rds", ROOT_KEY, ROOT_SECRET)
    rds.create_db_cluster(DBClusterIdentifier="bench", Engine="aurora-postgresql", EngineVersion="16.4",
                          MasterUsername="master", ManageMasterUserPassword=True)
    rds.create_db_instance(DBInstanceIdentifier="bench-1", DBClusterIdentifier="bench", Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="bench-1",
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def secret_status() -> str:
        cluster = rds.describe_db_clusters(DBClusterIdentifier="bench")["DBClusters"][0]
        return str(cluster["MasterUserSecret"]["SecretStatus"])

    while secret_status() != "active":
        time.sleep(0.05)
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        rds.modify_db_cluster(DBClusterIdentifier="bench", RotateMasterUserPassword=True, ApplyImmediately=True)
        while (status := secret_status()) != "active":
            if status == "impaired":
                raise SystemExit("rotation failed (SecretStatus impaired); see the server log")
            time.sleep(0.005)
        times.append(time.monotonic() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rotations", type=int, default=5)
    args = ap.parse_args()
    with moto_server() as murl:
        moto = run_all(murl, *setup(murl, "testing", "testing"), args.seconds, args.procs)
    with auroral() as aurl:
        ours = run_all(aurl, *setup(aurl, ROOT_KEY, ROOT_SECRET), args.seconds, args.procs)
        rotations = rotation_times(aurl, args.rotations)
    print(f"account {ACCOUNT}; caller: IAM user with an inline policy; {args.seconds:.0f} s per measurement; "
          "auroral verifies SigV4, evaluates IAM + the KMS key policy and decrypts every value")
    print(f"{'call':<32} {'client':<20} {'moto_server req/s':>18} {'auroral req/s':>14} {'ratio':>7}")
    for mode, m in moto.items():
        a = ours[mode]
        print(f"{'secretsmanager.get_secret_value':<32} {mode:<20} {m:>18.0f} {a:>14.0f} {a / m:>6.2f}x")
    print("target: >= 5x")
    print(f"managed master password rotation, median of {len(rotations)}: {statistics.median(rotations) * 1000:.0f} ms "
          f"(min {min(rotations) * 1000:.0f}, max {max(rotations) * 1000:.0f}; target <= 1000 ms)")


if __name__ == "__main__":
    main()
