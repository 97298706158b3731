"""Evaluation across policy types (identity, permissions boundary, session, resource-based, root) and
the AccessDenied texts: a table of scenarios, each (policies, principal, expected decision, reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from policy_cases import ACCOUNT, allow, deny, doc

from auroral.iam.policy import (
    AuthzRequest,
    Decision,
    EvaluationResult,
    StatementRef,
    access_denied_message,
    evaluate,
    parse_policy,
)

A, E, N = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY  # N: no allow (implicit deny)
ACTION = "rds:CreateDBCluster"
RESOURCE = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:c1"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
OTHER_USER = f"arn:aws:iam::{ACCOUNT}:user/bob"


def resource_policy(principal: Any, effect: str = "Allow", action: str = "rds:*") -> dict[str, Any]:
    return doc({"Sid": "R", "Effect": effect, "Principal": principal, "Action": action, "Resource": "*"})


ALLOW_ALL = doc(allow("rds:*"))
ALLOW_OTHER = doc(allow("ec2:*"))
DENY_RDS = doc({**deny("rds:Create*"), "Sid": "NoCreate"})


@dataclass
class Scenario:
    name: str
    identity: list[dict[str, Any]] = field(default_factory=list)
    boundary: dict[str, Any] | None = None
    session: list[dict[str, Any]] | None = None
    resource: dict[str, Any] | None = None
    principal: str = USER
    is_root: bool = False
    decision: Decision = A
    reason: str | None = None


NO_IDENTITY = f"no identity-based policy allows the {ACTION} action"
SCENARIOS = [
    Scenario("nothing attached", decision=N, reason=NO_IDENTITY),
    Scenario("identity allows", [ALLOW_ALL]),
    Scenario("identity allows another service", [ALLOW_OTHER], decision=N, reason=NO_IDENTITY),
    Scenario(
        "allow and deny in different policies",
        [ALLOW_ALL, DENY_RDS],
        decision=E,
        reason="explicit deny in an identity-based policy",
    ),
    Scenario("deny alone", [DENY_RDS], decision=E, reason="explicit deny in an identity-based policy"),
    # permissions boundary: a limit, never a grant
    Scenario("boundary allows", [ALLOW_ALL], boundary=doc(allow("rds:Create*"))),
    Scenario(
        "boundary does not allow",
        [ALLOW_ALL],
        boundary=ALLOW_OTHER,
        decision=N,
        reason=f"no permissions boundary allows the {ACTION} action",
    ),
    Scenario(
        "boundary denies",
        [ALLOW_ALL],
        boundary=doc(allow(), deny("rds:*")),
        decision=E,
        reason="explicit deny in a permissions boundary",
    ),
    Scenario("boundary alone grants nothing", [], boundary=ALLOW_ALL, decision=N, reason=NO_IDENTITY),
    Scenario(
        "boundary condition",
        [ALLOW_ALL],
        boundary=doc(allow(Condition={"Bool": {"aws:SecureTransport": "false"}})),
        decision=N,
        reason=f"no permissions boundary allows the {ACTION} action",
    ),
    # session policies
    Scenario("session allows", [ALLOW_ALL], session=[doc(allow("rds:CreateDBCluster"))], principal=SESSION),
    Scenario(
        "session does not allow",
        [ALLOW_ALL],
        session=[ALLOW_OTHER],
        principal=SESSION,
        decision=N,
        reason=f"no session policy allows the {ACTION} action",
    ),
    Scenario(
        "one of several session policies allows",
        [ALLOW_ALL],
        session=[ALLOW_OTHER, ALLOW_ALL],
        principal=SESSION,
    ),
    Scenario(
        "session denies",
        [ALLOW_ALL],
        session=[doc(allow(), deny(ACTION))],
        principal=SESSION,
        decision=E,
        reason="explicit deny in a session policy",
    ),
    Scenario("empty session list limits nothing", [ALLOW_ALL], session=[], principal=SESSION),
    Scenario(
        "session alone grants nothing",
        [],
        session=[ALLOW_ALL],
        principal=SESSION,
        decision=N,
        reason=NO_IDENTITY,
    ),
    Scenario(
        "boundary and session both needed",
        [ALLOW_ALL],
        boundary=ALLOW_ALL,
        session=[ALLOW_OTHER],
        principal=SESSION,
        decision=N,
        reason=f"no session policy allows the {ACTION} action",
    ),
    # resource-based policies (same account)
    Scenario("resource policy allows the user", resource=resource_policy({"AWS": USER})),
    # Naming the account delegates to the account's identity-based policies, also within the account
    # ("This delegates authority to the account"): alone it grants nothing.
    Scenario(
        "resource policy allows the account",
        resource=resource_policy({"AWS": ACCOUNT}),
        decision=N,
        reason=NO_IDENTITY,
    ),
    Scenario(
        "resource policy allows the account root ARN",
        resource=resource_policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        decision=N,
        reason=NO_IDENTITY,
    ),
    Scenario("resource policy allows the account, identity allows", [ALLOW_ALL],
             resource=resource_policy({"AWS": ACCOUNT})),
    Scenario(
        "resource policy allows someone else",
        resource=resource_policy({"AWS": OTHER_USER}),
        decision=N,
        reason=NO_IDENTITY,
    ),
    Scenario(
        "resource policy denies",
        [ALLOW_ALL],
        resource=resource_policy({"AWS": USER}, "Deny"),
        decision=E,
        reason="explicit deny in a resource-based policy",
    ),
    Scenario(
        "resource policy denies someone else",
        [ALLOW_ALL],
        resource=resource_policy({"AWS": OTHER_USER}, "Deny"),
    ),
    Scenario(
        "resource policy NotPrincipal deny",
        [ALLOW_ALL],
        resource=doc(
            {"Effect": "Deny", "NotPrincipal": {"AWS": OTHER_USER}, "Action": "rds:*", "Resource": "*"}
        ),
        decision=E,
        reason="explicit deny in a resource-based policy",
    ),
    Scenario(
        "identity deny beats resource allow",
        [DENY_RDS],
        resource=resource_policy({"AWS": USER}),
        decision=E,
        reason="explicit deny in an identity-based policy",
    ),
    # A grant naming the user ARN directly is not limited by the boundary...
    Scenario(
        "resource names user, boundary silent",
        [],
        boundary=ALLOW_OTHER,
        resource=resource_policy({"AWS": USER}),
    ),
    # ... a grant to the account is (it only delegates to the identity-based policies).
    Scenario(
        "resource names account, boundary silent",
        [ALLOW_ALL],
        boundary=ALLOW_OTHER,
        resource=resource_policy({"AWS": ACCOUNT}),
        decision=N,
        reason=f"no permissions boundary allows the {ACTION} action",
    ),
    Scenario(
        "resource names user, boundary denies",
        [],
        boundary=doc(deny()),
        resource=resource_policy({"AWS": USER}),
        decision=E,
        reason="explicit deny in a permissions boundary",
    ),
    # Sessions: naming the session ARN bypasses the session policy, naming the role ARN does not.
    Scenario(
        "resource names session",
        [],
        session=[ALLOW_OTHER],
        resource=resource_policy({"AWS": SESSION}),
        principal=SESSION,
    ),
    Scenario(
        "resource names role",
        [],
        session=[ALLOW_OTHER],
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
        decision=N,
        reason=f"no session policy allows the {ACTION} action",
    ),
    Scenario(
        "resource names role, no session policy",
        [],
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
    ),
    # ... and the role's boundary limits a grant to the role ARN, not one to the session ARN.
    Scenario(
        "resource names role, boundary silent",
        [],
        boundary=ALLOW_OTHER,
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
        decision=N,
        reason=f"no permissions boundary allows the {ACTION} action",
    ),
    Scenario(
        "resource names role, boundary and session allow",
        [],
        boundary=ALLOW_ALL,
        session=[ALLOW_ALL],
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
    ),
    Scenario(
        "resource names role, identity policy does not help past the session policy",
        [ALLOW_ALL],
        session=[ALLOW_OTHER],
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
        decision=N,
        reason=f"no session policy allows the {ACTION} action",
    ),
    Scenario(
        "resource names session, boundary and session silent",
        [],
        boundary=ALLOW_OTHER,
        session=[ALLOW_OTHER],
        resource=resource_policy({"AWS": SESSION}),
        principal=SESSION,
    ),
    Scenario(
        "resource names another session of the role",
        [],
        resource=resource_policy({"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/other"}),
        principal=SESSION,
        decision=N,
        reason=NO_IDENTITY,
    ),
    Scenario(
        "resource names session, session policy denies",
        [],
        session=[doc(allow(), deny(ACTION))],
        resource=resource_policy({"AWS": SESSION}),
        principal=SESSION,
        decision=E,
        reason="explicit deny in a session policy",
    ),
    Scenario(
        "resource names role, boundary denies",
        [],
        boundary=doc(allow(), deny(ACTION)),
        resource=resource_policy({"AWS": ROLE}),
        principal=SESSION,
        decision=E,
        reason="explicit deny in a permissions boundary",
    ),
    # A wildcard principal (narrowed by aws:PrincipalArn or not) is not limited by boundary or session
    # policy: "permissions boundaries or session policies do not limit permissions granted using the
    # aws:PrincipalArn condition key with a wildcard(*) in the Principal element".
    Scenario(
        "wildcard principal with aws:PrincipalArn, boundary and session silent",
        [],
        boundary=ALLOW_OTHER,
        session=[ALLOW_OTHER],
        resource=doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "rds:*", "Resource": "*",
                      "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}}),
        principal=SESSION,
    ),
    # A Deny with NotPrincipal applies to any principal that has a permissions boundary, whatever it lists.
    Scenario(
        "NotPrincipal deny listing the user, user has a boundary",
        [ALLOW_ALL],
        boundary=ALLOW_ALL,
        resource=doc({"Effect": "Deny", "NotPrincipal": {"AWS": USER}, "Action": "rds:*", "Resource": "*"}),
        decision=E,
        reason="explicit deny in a resource-based policy",
    ),
    Scenario(
        "NotPrincipal deny listing the user, no boundary",
        [ALLOW_ALL],
        resource=doc({"Effect": "Deny", "NotPrincipal": {"AWS": USER}, "Action": "rds:*", "Resource": "*"}),
    ),
    # root: identity policies do not apply; resource-based denies do
    Scenario("root with nothing", is_root=True, principal=f"arn:aws:iam::{ACCOUNT}:root"),
    Scenario(
        "root ignores identity deny", [DENY_RDS], is_root=True, principal=f"arn:aws:iam::{ACCOUNT}:root"
    ),
    Scenario(
        "root and resource deny",
        resource=resource_policy("*", "Deny"),
        is_root=True,
        principal=f"arn:aws:iam::{ACCOUNT}:root",
        decision=E,
        reason="explicit deny in a resource-based policy",
    ),
]


def run(s: Scenario) -> EvaluationResult:
    identity = [parse_policy(d, name=f"id{i}") for i, d in enumerate(s.identity)]
    boundary = parse_policy(s.boundary, kind="boundary", name="boundary") if s.boundary else None
    session = None if s.session is None else [parse_policy(d, kind="session") for d in s.session]
    resource = parse_policy(s.resource, kind="resource", name="res") if s.resource else None
    principal_arn = ROLE if s.principal == SESSION else s.principal  # aws:PrincipalArn of a session: its role
    context = {"aws:SecureTransport": True, "aws:PrincipalArn": principal_arn}
    request = AuthzRequest(ACTION, RESOURCE, context, s.principal, ACCOUNT)
    return evaluate(
        request, identity, boundary=boundary, session=session, resource_policy=resource, is_root=s.is_root
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    result = run(scenario)
    assert result.decision is scenario.decision
    if scenario.reason is not None:
        assert result.reason == scenario.reason


def test_matched_statements() -> None:
    result = run(Scenario("x", [ALLOW_ALL, DENY_RDS]))
    assert result.matched == (StatementRef("id1", "NoCreate", 0),)
    result = run(Scenario("x", [ALLOW_ALL], boundary=doc({**allow(), "Sid": "B"})))
    assert result.matched == (StatementRef("id0", None, 0), StatementRef("boundary", "B", 0))
    result = run(Scenario("x", resource=resource_policy({"AWS": USER})))
    assert result.matched == (StatementRef("res", "R", 0),)
    assert run(Scenario("x")).matched == ()


def test_policy_name_defaults_to_id() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Id": "MyPolicy", "Statement": [deny()]})
    result = evaluate(AuthzRequest("s:a", "*", {}), [policy])
    assert result.matched == (StatementRef("MyPolicy", None, 0),)


MESSAGES = [
    (Scenario("x"), f"because no identity-based policy allows the {ACTION} action"),
    (Scenario("x", [ALLOW_ALL, DENY_RDS]), "with an explicit deny in an identity-based policy"),
    (
        Scenario("x", [ALLOW_ALL], boundary=ALLOW_OTHER),
        f"because no permissions boundary allows the {ACTION} action",
    ),
    (Scenario("x", [ALLOW_ALL], boundary=doc(deny())), "with an explicit deny in a permissions boundary"),
    (
        Scenario("x", [ALLOW_ALL], session=[ALLOW_OTHER]),
        f"because no session policy allows the {ACTION} action",
    ),
    (Scenario("x", [ALLOW_ALL], session=[doc(deny())]), "with an explicit deny in a session policy"),
    (
        Scenario("x", [ALLOW_ALL], resource=resource_policy("*", "Deny")),
        "with an explicit deny in a resource-based policy",
    ),
]


@pytest.mark.parametrize(("scenario", "tail"), MESSAGES, ids=[t for _, t in MESSAGES])
def test_access_denied_message(scenario: Scenario, tail: str) -> None:
    message = access_denied_message(USER, ACTION, RESOURCE, run(scenario))
    assert message == f"User: {USER} is not authorized to perform: {ACTION} on resource: {RESOURCE} {tail}"


def test_action_cache_is_per_action() -> None:
    policy = parse_policy(doc(allow("rds:Describe*"), deny("rds:DescribeDBClusters")))
    for _ in range(2):  # the second round is served from the per-action cache
        assert evaluate(AuthzRequest("rds:DescribeDBClusters", "*"), [policy]).decision is E
        assert evaluate(AuthzRequest("rds:DescribeDBInstances", "*"), [policy]).decision is A
        assert evaluate(AuthzRequest("RDS:DESCRIBEDBINSTANCES", "*"), [policy]).decision is A
