"""Denial of service through policy text, end to end against a running auroral.

The attack: wildcards used to become backtracking regexes evaluated on the event loop that serves
every endpoint, so a user holding only IAMReadOnlyAccess could call SimulateCustomPolicy with
``Resource: arn:aws:s3:::*a*a*a...X`` against a long run of ``a`` and freeze the API (and database
logins) for minutes. Now matching is linear-time and the simulator runs off the event loop: the
attack returns at once and another client is served meanwhile. Oversized policies are refused with
IAM's, Secrets Manager's and STS's own errors.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

# No retries and a read timeout: if the hole reopens the test fails instead of hanging.
FAST = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60, connect_timeout=10)
PROMPT = 2.0  # seconds: generous for a loaded machine; a stalled loop takes minutes


def _name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}"


def _policy(resource: Any, condition: dict[str, Any] | None = None, action: Any = "s3:GetObject") -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _non_ws(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _doc_of_size(size: int, *, principal: bool = False) -> str:
    """A valid policy document of exactly ``size`` non-whitespace characters."""
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "sts:AssumeRole" if principal else "s3:GetObject"}
    if principal:
        statement["Principal"] = {"Service": "rds.amazonaws.com"}
        statement["Condition"] = {"StringLike": {"aws:UserAgent": ""}}
    else:
        statement["Resource"] = "arn:aws:s3:::"

    def render(pad: int) -> str:
        if principal:
            statement["Condition"]["StringLike"]["aws:UserAgent"] = "x" * pad
        else:
            statement["Resource"] = "arn:aws:s3:::" + "x" * pad
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)

    text = render(0)
    text = render(size - _non_ws(text))
    assert _non_ws(text) == size
    return text


@pytest.fixture
def reader(server: Any, make_user: Any) -> Any:
    """A user whose only permission is the AWS managed IAMReadOnlyAccess policy."""
    user = make_user()
    server.client("iam").attach_user_policy(UserName=user.name,
                                            PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    return user


def test_simulate_with_backtracking_patterns_does_not_stall_the_server(server: Any, reader: Any) -> None:
    attacker = server.client("iam", reader.access_key, reader.secret_key, config=FAST)
    bystander = server.client("sts", config=FAST)
    stars = "arn:aws:s3:::" + "*a" * 60 + "X"
    long_arn = "arn:aws:s3:::" + "a" * 2000  # ResourceArns members may be up to 2048 characters
    attacks: list[dict[str, Any]] = [
        # the reported attack, and the same shape with many more stars
        {"PolicyInputList": [_policy("arn:aws:s3:::*a*a*a*a*a*aX")],
         "ActionNames": ["s3:GetObject"], "ResourceArns": ["arn:aws:s3:::" + "a" * 85]},
        {"PolicyInputList": [_policy(stars)], "ActionNames": ["s3:GetObject"], "ResourceArns": [long_arn] * 20},
        # NotResource, Action wildcards, ? runs, StringLike and ArnLike conditions reach the same matcher
        {"PolicyInputList": [json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:" + "*a" * 40 + "X", "NotResource": stars},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {
                "StringLike": {"aws:PrincipalTag/t": "*a" * 60 + "X"},
                "ArnLike": {"aws:SourceArn": "arn:aws:s3:::" + "*a" * 60 + "?" * 30 + "X"}}}]})],
         "ActionNames": ["s3:" + "a" * 120], "ResourceArns": [long_arn],
         "ContextEntries": [
             {"ContextKeyName": "aws:PrincipalTag/t", "ContextKeyValues": ["a" * 4000], "ContextKeyType": "string"},
             {"ContextKeyName": "aws:SourceArn", "ContextKeyValues": [long_arn], "ContextKeyType": "string"}]},
        {"PolicyInputList": [_policy("arn:aws:s3:::*" + "a?" * 900 + "b*")],
         "ActionNames": ["s3:GetObject"], "ResourceArns": [long_arn] * 5},
    ]
    durations: list[float] = []
    outcomes: list[Any] = []

    def attack() -> None:
        for params in attacks * 3:
            start = time.perf_counter()
            try:
                outcomes.append(attacker.simulate_custom_policy(**params))
            except Exception as exc:  # reported below, on the test's thread
                outcomes.append(exc)
            durations.append(time.perf_counter() - start)

    thread = threading.Thread(target=attack)
    thread.start()
    waits = []
    try:
        while thread.is_alive() or not waits:
            start = time.perf_counter()
            bystander.get_caller_identity()
            waits.append(time.perf_counter() - start)
            time.sleep(0.02)
    finally:
        thread.join(120)
    assert not thread.is_alive()
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    assert len(outcomes) == len(attacks) * 3
    for out in outcomes:
        assert {r["EvalDecision"] for r in out["EvaluationResults"]} == {"implicitDeny"}
    assert max(durations) < PROMPT, durations
    assert max(waits) < PROMPT, waits


def test_simulate_wildcards_still_match(server: Any, reader: Any) -> None:
    iam = server.client("iam", reader.access_key, reader.secret_key, config=FAST)
    out = iam.simulate_custom_policy(
        PolicyInputList=[_policy("arn:aws:s3:::" + "*a" * 60 + "X", action="S3:Get*")],
        ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::" + "a" * 2000 + "X", "arn:aws:s3:::" + "a" * 59 + "X"],
    )
    decisions = [r["EvalDecision"] for r in out["EvaluationResults"]]
    assert decisions == ["allowed", "implicitDeny"]  # 59 a's cannot fill 60 "*a" pieces


def _error(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call(**params)
    error = err.value.response["Error"]
    return error["Code"], error["Message"]


def test_oversized_policies_are_refused_with_aws_errors(server: Any, make_user: Any) -> None:
    iam = server.client("iam", config=FAST)
    name = _name("big")
    iam.create_user(UserName=name)
    iam.create_group(GroupName=name)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)

    # managed policies: 6,144 non-whitespace characters (whitespace does not count)
    assert _error(iam.create_policy, PolicyName=name, PolicyDocument=_doc_of_size(6145)) == (
        "LimitExceeded", "Cannot exceed quota for PolicySize: 6144")
    iam.create_policy(PolicyName=name, PolicyDocument=_doc_of_size(6144))
    # inline policies: the aggregate per user 2,048 / group 5,120 / role 10,240
    for put, kind, param, limit in (
        (iam.put_user_policy, "user", "UserName", 2048),
        (iam.put_group_policy, "group", "GroupName", 5120),
        (iam.put_role_policy, "role", "RoleName", 10240),
    ):
        put(**{param: name}, PolicyName="fits", PolicyDocument=_doc_of_size(limit))
        assert _error(put, **{param: name}, PolicyName="more", PolicyDocument=_doc_of_size(200)) == (
            "LimitExceeded", f"Maximum policy size of {limit} bytes exceeded for {kind} {name}")
    # trust policies: 2,048
    assert _error(iam.update_assume_role_policy, RoleName=name,
                  PolicyDocument=_doc_of_size(2049, principal=True)) == (
        "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048")
    # the simulator's inputs: botocore's length limits (a ResourceArns member up to 2,048 characters)
    code, message = _error(iam.simulate_custom_policy, PolicyInputList=[_policy("*")],
                           ActionNames=["s3:GetObject"], ResourceArns=["arn:aws:s3:::" + "a" * 2040])
    assert code == "ValidationError" and "less than or equal to 2048" in message

    # Secrets Manager resource policies: 20,480 characters
    sm = server.client("secretsmanager", config=FAST)
    secret = sm.create_secret(Name=name, SecretString="s")["ARN"]
    code, message = _error(sm.put_resource_policy, SecretId=secret, ResourcePolicy=" " * 20481)
    assert "less than or equal to 20480" in message, (code, message)

    # KMS key policies: 32 KiB
    kms = server.client("kms", config=FAST)
    code, _ = _error(kms.create_key, Policy=" " * 32769)
    assert code == "MalformedPolicyDocumentException"

    # session policies: packed into the token, at most 100% of the space
    caller = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    sts = server.client("sts", caller.access_key, caller.secret_key, config=FAST)
    role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": "sts:AssumeRole"}]}))
    # the inline session policy's plaintext: 2,048 characters, refused before it is parsed
    code, message = _error(sts.assume_role, RoleArn=role_arn, RoleSessionName="sess",
                           Policy=json.dumps(json.loads(_doc_of_size(2000)), indent=8) + " " * 100_000)
    assert code == "ValidationError"
    assert message.endswith("at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048")
    small = _doc_of_size(1000)
    assert sts.assume_role(RoleArn=role_arn, RoleSessionName="sess", Policy=small)["PackedPolicySize"] <= 100
    # a managed session policy counts towards the packed size too
    policy_arn = f"arn:aws:iam::{server.account}:policy/{name}"
    code, message = _error(sts.assume_role, RoleArn=role_arn, RoleSessionName="sess", Policy=small,
                           PolicyArns=[{"arn": policy_arn}])
    assert code == "PackedPolicyTooLarge" and message.startswith("Packed policy consumes"), message
