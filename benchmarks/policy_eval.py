"""Policy evaluation throughput: auroral.iam.policy against baselines measured in the same run.

One user with three identity policies (20 statements: wildcard actions and resources, StringEquals on
aws:RequestedRegion, StringLike on a tag, IpAddress on aws:SourceIp, Bool aws:SecureTransport, a Deny
on rds:ManageMasterUserPassword = false) and a rotating mix of 20 requests, evaluated on one core.

Baselines:
* ``naive``: what a straightforward evaluator does — json.loads the documents for every decision and
  match with fnmatch, with the same condition operators (the decisions are checked to agree);
* ``moto``: moto 5's ``moto.iam.access_control.IAMPolicy`` (it only evaluates StringEquals conditions
  and ignores the others, so it does less work and its decisions differ; shown for reference).

Run: ``python benchmarks/policy_eval.py [seconds]``. Target: >= 100,000 decisions/s.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from auroral.iam.policy import AuthzRequest, Decision, Policy, evaluate, parse_policy

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
REGIONS = {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}

POLICIES: list[dict[str, Any]] = [
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RdsRead", "Effect": "Allow", "Action": ["rds:Describe*", "rds:List*"], "Resource": "*"},
            {
                "Sid": "RdsClusters",
                "Effect": "Allow",
                "Action": ["rds:CreateDBCluster", "rds:ModifyDBCluster", "rds:*DBClusterSnapshot"],
                "Resource": [f"{CLUSTER}app-*", f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:*"],
                "Condition": REGIONS,
            },
            {
                "Sid": "RdsTeamTag",
                "Effect": "Allow",
                "Action": ["rds:StartDBCluster", "rds:StopDBCluster", "rds:RebootDBInstance"],
                "Resource": f"arn:aws:rds:*:{ACCOUNT}:*",
                "Condition": {"StringLike": {"aws:ResourceTag/team": ["data-*", "platform"]}},
            },
            {
                "Sid": "RdsFromOffice",
                "Effect": "Allow",
                "Action": "rds:DeleteDBCluster",
                "Resource": f"{CLUSTER}*",
                "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}},
            },
            {
                "Sid": "DenyUnmanagedPassword",
                "Effect": "Deny",
                "Action": ["rds:CreateDBCluster", "rds:ModifyDBCluster"],
                "Resource": "*",
                "Condition": {"Bool": {"rds:ManageMasterUserPassword": "false"}},
            },
            {"Sid": "RdsTags", "Effect": "Allow", "Action": "rds:*Tags*", "Resource": f"{CLUSTER}*"},
            {"Sid": "Ec2Read", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        ],
    },
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SecretsOwn",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": f"{SECRET}rds!cluster-*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            {
                "Sid": "SecretsUser",
                "Effect": "Allow",
                "Action": "secretsmanager:*",
                "Resource": f"{SECRET}${{aws:username}}/*",
            },
            {
                "Sid": "SecretsList",
                "Effect": "Allow",
                "Action": "secretsmanager:ListSecrets",
                "Resource": "*",
            },
            {
                "Sid": "KmsVia",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
            },
            {
                "Sid": "DenyInsecure",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {"Sid": "KmsList", "Effect": "Allow", "Action": "kms:List*", "Resource": "*"},
        ],
    },
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "IamSelf", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
            {
                "Sid": "IamOwnKeys",
                "Effect": "Allow",
                "Action": ["iam:*AccessKey*", "iam:ChangePassword"],
                "Resource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
            },
            {"Sid": "StsCaller", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
            {
                "Sid": "DenyIamWrite",
                "Effect": "Deny",
                "Action": ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*"],
                "NotResource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
            },
            {
                "Sid": "PassRdsRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/rds-*",
                "Condition": {"StringEquals": {"iam:PassedToService": "rds.amazonaws.com"}},
            },
            {
                "Sid": "SlR",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "*",
                "Condition": {"StringLike": {"iam:AWSServiceName": "rds.amazonaws.com"}},
            },
            {"Sid": "Ec2Sg", "Effect": "Allow", "Action": "ec2:*SecurityGroup*", "Resource": "*"},
        ],
    },
]

BASE_CONTEXT: dict[str, Any] = {
    "aws:username": "alice",
    "aws:userid": "AIDAEXAMPLE",
    "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "aws:PrincipalAccount": ACCOUNT,
    "aws:SourceIp": "203.0.113.7",
    "aws:SecureTransport": True,
    "aws:RequestedRegion": REGION,
    "aws:MultiFactorAuthPresent": False,
    "aws:CurrentTime": "2026-01-01T00:00:00Z",
}


def _request(action: str, resource: str, **extra: Any) -> AuthzRequest:
    return AuthzRequest(
        action, resource, {**BASE_CONTEXT, **extra}, f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT
    )


REQUESTS: list[AuthzRequest] = [
    _request("rds:DescribeDBClusters", "*"),
    _request("rds:CreateDBCluster", f"{CLUSTER}app-1", **{"rds:ManageMasterUserPassword": True}),
    _request("rds:CreateDBCluster", f"{CLUSTER}app-2", **{"rds:ManageMasterUserPassword": False}),
    _request("rds:CreateDBCluster", f"{CLUSTER}other", **{"rds:ManageMasterUserPassword": True}),
    _request("rds:StartDBCluster", f"{CLUSTER}app-1", **{"aws:ResourceTag/team": "data-eng"}),
    _request("rds:StopDBCluster", f"{CLUSTER}app-1", **{"aws:ResourceTag/team": "web"}),
    _request("rds:DeleteDBCluster", f"{CLUSTER}app-1"),
    _request("rds:DeleteDBCluster", f"{CLUSTER}app-1", **{"aws:SourceIp": "198.51.100.1"}),
    _request("rds:AddTagsToResource", f"{CLUSTER}app-1"),
    _request("ec2:DescribeSecurityGroups", "*"),
    _request("secretsmanager:GetSecretValue", f"{SECRET}rds!cluster-abc-123456"),
    _request("secretsmanager:GetSecretValue", f"{SECRET}alice/db-AbCdEf"),
    _request("secretsmanager:DeleteSecret", f"{SECRET}bob/db-AbCdEf"),
    _request(
        "kms:Decrypt",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1",
        **{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"},
    ),
    _request("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1", **{"aws:SecureTransport": False}),
    _request("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    _request("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    _request(
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/rds-monitoring",
        **{"iam:PassedToService": "rds.amazonaws.com"},
    ),
    _request("sts:GetCallerIdentity", "*"),
    _request("s3:GetObject", "arn:aws:s3:::bucket/key"),
]


# ---------------------------------------------------------------- naive baseline


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _naive_condition(op: str, key: str, expected: list[str], ctx: dict[str, Any]) -> bool:
    lowered = {k.lower(): v for k, v in ctx.items()}
    value = lowered.get(key.lower())
    if value is None:
        return False
    if isinstance(value, bool):
        value = "true" if value else "false"
    if op == "StringEquals":
        return value in expected
    if op == "StringLike":
        return any(fnmatch.fnmatchcase(value, e) for e in expected)
    if op == "Bool":
        return value.lower() in [e.lower() for e in expected]
    if op == "IpAddress":
        return any(ipaddress.ip_address(value) in ipaddress.ip_network(e, strict=False) for e in expected)
    raise ValueError(op)


def naive_evaluate(documents: Sequence[str], request: AuthzRequest) -> Decision:
    allowed = False
    ctx = dict(request.context)
    for text in documents:
        for st in _listify(json.loads(text)["Statement"]):
            key = "Action" if "Action" in st else "NotAction"
            hit = any(fnmatch.fnmatch(request.action.lower(), a.lower()) for a in _listify(st[key]))
            if hit == (key == "NotAction"):
                continue
            key = "Resource" if "Resource" in st else "NotResource"
            patterns = [p.replace("${aws:username}", str(ctx.get("aws:username"))) for p in _listify(st[key])]
            hit = any(fnmatch.fnmatchcase(request.resource, p) for p in patterns)
            if hit == (key == "NotResource"):
                continue
            conditions = st.get("Condition", {})
            if not all(
                _naive_condition(op, k, _listify(v), ctx)
                for op, keys in conditions.items()
                for k, v in keys.items()
            ):
                continue
            if st["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- timing


def rate(fn: Callable[[AuthzRequest], object], seconds: float) -> float:
    n = 0
    count = len(REQUESTS)
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for request in REQUESTS:
            fn(request)
        n += count
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    documents = [json.dumps(p) for p in POLICIES]
    policies: list[Policy] = [parse_policy(doc, name=f"policy{i}") for i, doc in enumerate(documents)]

    def ours(request: AuthzRequest) -> Decision:
        # A fresh request object each time, as the server builds one per API call: nothing is cached
        # on the request between decisions (the per-policy action cache is warm, as in a server).
        fresh = AuthzRequest(request.action, request.resource, request.context, request.principal_arn)
        return evaluate(fresh, policies).decision

    decisions = [ours(r) for r in REQUESTS]
    naive = [naive_evaluate(documents, r) for r in REQUESTS]
    mismatched = [r.action for r, a, b in zip(REQUESTS, decisions, naive, strict=True) if a != b]
    if mismatched:
        raise SystemExit(f"naive baseline disagrees on {mismatched}")
    counts = {d.name: decisions.count(d) for d in Decision}
    print(f"requests: {len(REQUESTS)} rotating; decisions: {counts}")

    ours_rate = rate(ours, seconds)
    naive_rate = rate(lambda r: naive_evaluate(documents, r), seconds)
    print(f"auroral.iam.policy : {ours_rate:12,.0f} decisions/s")
    print(f"naive (json+fnmatch): {naive_rate:12,.0f} decisions/s   ratio {ours_rate / naive_rate:6.1f}x")
    try:
        from moto.iam.access_control import IAMPolicy
    except ImportError:  # pragma: no cover - moto is the "bench" extra
        print("moto not installed: moto baseline skipped")
    else:
        moto_policies = [IAMPolicy(doc) for doc in documents]

        def moto_eval(request: AuthzRequest) -> object:
            ctx = {k: str(v) for k, v in request.context.items()}
            return [p.is_action_permitted(request.action, request.resource, None, ctx) for p in moto_policies]

        moto_rate = rate(moto_eval, seconds)
        print(f"moto IAMPolicy     : {moto_rate:12,.0f} decisions/s   ratio {ours_rate / moto_rate:6.1f}x")
    target = 100_000
    print(f"target {target:,}/s: {'met' if ours_rate >= target else 'NOT met'}")


if __name__ == "__main__":
    main()
