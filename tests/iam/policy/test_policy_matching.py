"""Action / Resource matching, NotAction / NotResource, and policy variables: tables of
(statements, request, expected decision)."""

from __future__ import annotations

from typing import Any

import pytest
from policy_cases import allow, decide, deny

from auroral.iam.policy import Decision

A, E, N = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY  # N: no allow (implicit deny)
CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:"

# (action pattern(s), request action, expected)
ACTIONS: list[tuple[Any, str, Decision]] = [
    ("rds:CreateDBCluster", "rds:CreateDBCluster", A),
    ("rds:CreateDBCluster", "RDS:createdbcluster", A),  # case-insensitive both ways
    ("RDS:CREATEDBCLUSTER", "rds:CreateDBCluster", A),
    ("rds:CreateDBCluster", "rds:CreateDBClusterSnapshot", N),  # exact is exact
    ("rds:Create*", "rds:CreateDBCluster", A),
    ("rds:Create*", "rds:DeleteDBCluster", N),
    ("rds:*Cluster", "rds:DeleteDBCluster", A),
    ("rds:*Cluster", "rds:DeleteDBClusterSnapshot", N),
    ("rds:*DB*", "rds:ModifyDBInstance", A),
    ("rds:CreateDBClust?r", "rds:CreateDBCluster", A),
    ("rds:CreateDBClus?r", "rds:CreateDBCluster", N),  # ? is exactly one character
    ("rds:*", "rds-data:ExecuteStatement", N),
    ("*", "anything:AtAll", A),
    ("rds:Create.*", "rds:CreateXDB", N),  # regex metacharacters are literal
    (["ec2:Describe*", "rds:Describe*"], "rds:DescribeDBClusters", A),  # list OR'ed
    (["ec2:Describe*", "rds:Describe*"], "kms:Decrypt", N),
]

# (resource pattern(s), request resource, expected)
RESOURCES: list[tuple[Any, str, Decision]] = [
    ("*", f"{CLUSTER}c1", A),
    ("*", "*", A),
    (f"{CLUSTER}c1", f"{CLUSTER}c1", A),
    (f"{CLUSTER}C1", f"{CLUSTER}c1", N),  # case-sensitive
    (f"{CLUSTER}c1", f"{CLUSTER}c10", N),
    ("arn:aws:rds:*", f"{CLUSTER}c1", A),  # * runs over ':'
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c", A),  # ... and over '/'
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", N),
    ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/x", A),
    ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/xy", N),
    ("arn:aws:rds:*:123456789012:cluster:app-*", f"{CLUSTER}app-1", A),
    ("arn:aws:rds:*:123456789012:cluster:app-*", "arn:aws:rds:us-east-1:999999999999:cluster:app-1", N),
    ("arn:aws:s3:::b.c/(x)+", "arn:aws:s3:::b.c/(x)+", A),  # regex metacharacters are literal
    ("arn:aws:s3:::b.c/(x)+", "arn:aws:s3:::bxc/(x)+", N),
    ([f"{CLUSTER}a", f"{CLUSTER}b"], f"{CLUSTER}b", A),
    ([f"{CLUSTER}a", f"{CLUSTER}b"], f"{CLUSTER}c", N),
]


@pytest.mark.parametrize(("pattern", "action", "expected"), ACTIONS)
def test_action(pattern: Any, action: str, expected: Decision) -> None:
    assert decide([allow(pattern)], action=action) is expected


@pytest.mark.parametrize(("pattern", "resource", "expected"), RESOURCES)
def test_resource(pattern: Any, resource: str, expected: Decision) -> None:
    assert decide([allow("rds:*", pattern)], action="rds:X", resource=resource) is expected


SECRET = "arn:aws:s3:::secret/*"
NOT: list[tuple[list[dict[str, Any]], str, str, Decision]] = [
    ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "rds:CreateDBCluster", "*", A),
    ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "iam:CreateUser", "*", N),
    ([{"Effect": "Allow", "NotAction": ["iam:*", "kms:*"], "Resource": "*"}], "KMS:Decrypt", "*", N),
    (
        [{"Effect": "Allow", "Action": "s3:*", "NotResource": SECRET}],
        "s3:GetObject",
        "arn:aws:s3:::public/x",
        A,
    ),
    (
        [{"Effect": "Allow", "Action": "s3:*", "NotResource": SECRET}],
        "s3:GetObject",
        "arn:aws:s3:::secret/x",
        N,
    ),
    # Deny everything except iam:Get* outside one ARN (NotAction + NotResource in one statement).
    *[
        (
            [allow(), {"Effect": "Deny", "NotAction": "iam:Get*", "NotResource": "arn:aws:iam::1:user/me"}],
            action,
            resource,
            expected,
        )
        for action, resource, expected in [
            ("iam:GetUser", "arn:aws:iam::1:user/other", A),  # action excluded from the deny
            ("rds:X", "arn:aws:iam::1:user/other", E),  # denied
            ("rds:X", "arn:aws:iam::1:user/me", A),  # resource excluded from the deny
        ]
    ],
    # Deny with NotAction: a guard-rail "deny all but".
    (
        [allow(), {"Effect": "Deny", "NotAction": ["sts:*", "iam:ChangePassword"], "Resource": "*"}],
        "sts:GetCallerIdentity",
        "*",
        A,
    ),
    (
        [allow(), {"Effect": "Deny", "NotAction": ["sts:*", "iam:ChangePassword"], "Resource": "*"}],
        "rds:X",
        "*",
        E,
    ),
]


@pytest.mark.parametrize(("statements", "action", "resource", "expected"), NOT)
def test_not_action_not_resource(
    statements: list[dict[str, Any]], action: str, resource: str, expected: Decision
) -> None:
    assert decide(statements, action=action, resource=resource) is expected


USER_ARN = "arn:aws:iam::123456789012:user/"
ALICE = {"aws:username": "alice"}
# (version, resource pattern, context, request resource, expected)
VARIABLES: list[tuple[str | None, str, dict[str, Any], str, Decision]] = [
    ("2012-10-17", USER_ARN + "${aws:username}", ALICE, USER_ARN + "alice", A),
    ("2012-10-17", USER_ARN + "${aws:username}", ALICE, USER_ARN + "bob", N),
    ("2012-10-17", USER_ARN + "${AWS:UserName}", ALICE, USER_ARN + "alice", A),  # key case-insensitive
    ("2012-10-17", USER_ARN + "${aws:username}", {"AWS:USERNAME": "alice"}, USER_ARN + "alice", A),
    ("2012-10-17", USER_ARN + "${aws:username}/*", ALICE, USER_ARN + "alice/x/y", A),
    ("2012-10-17", USER_ARN + "${aws:username}", {}, USER_ARN + "alice", N),  # missing: no match
    ("2012-10-17", USER_ARN + "${aws:username}", {}, USER_ARN, N),  # ... not an empty string either
    ("2012-10-17", USER_ARN + "${aws:username, 'anon'}", {}, USER_ARN + "anon", A),  # default
    ("2012-10-17", USER_ARN + "${aws:username, 'anon'}", ALICE, USER_ARN + "alice", A),
    ("2012-10-17", USER_ARN + "${aws:username,'anon'}", {}, USER_ARN + "anon", A),
    (
        "2012-10-17",
        USER_ARN + "${aws:PrincipalTag/team}-*",
        {"aws:principaltag/TEAM": "data"},
        USER_ARN + "data-1",
        A,
    ),
    (
        "2012-10-17",
        USER_ARN + "${aws:PrincipalTag/team}-*",
        {"aws:PrincipalTag/team": "web"},
        USER_ARN + "data-1",
        N,
    ),
    (
        "2012-10-17",
        "arn:aws:s3:::b/${aws:SourceIp}",
        {"aws:SourceIp": "10.0.0.1"},
        "arn:aws:s3:::b/10.0.0.1",
        A,
    ),
    (
        "2012-10-17",
        "arn:aws:s3:::b/${aws:SecureTransport}",
        {"aws:SecureTransport": True},
        "arn:aws:s3:::b/true",
        A,
    ),
    (
        "2012-10-17",
        "arn:aws:s3:::b/${aws:TagKeys}",
        {"aws:TagKeys": ["a"]},
        "arn:aws:s3:::b/a",
        N,
    ),  # multi-valued
    # Escapes: ${*} ${?} ${$} are the literal characters.
    ("2012-10-17", "arn:aws:s3:::b/${*}", {}, "arn:aws:s3:::b/*", A),
    ("2012-10-17", "arn:aws:s3:::b/${*}", {}, "arn:aws:s3:::b/x", N),
    ("2012-10-17", "arn:aws:s3:::b/${?}", {}, "arn:aws:s3:::b/?", A),
    ("2012-10-17", "arn:aws:s3:::b/${?}", {}, "arn:aws:s3:::b/x", N),
    ("2012-10-17", "arn:aws:s3:::b/${$}x", {}, "arn:aws:s3:::b/$x", A),
    # A wildcard character in a variable's value is literal.
    ("2012-10-17", USER_ARN + "${aws:username}", {"aws:username": "a*"}, USER_ARN + "abc", N),
    ("2012-10-17", USER_ARN + "${aws:username}", {"aws:username": "a*"}, USER_ARN + "a*", A),
    ("2012-10-17", USER_ARN + "${aws:username}", {"aws:username": "a?"}, USER_ARN + "ab", N),
    # Versions before 2012-10-17: ${...} is plain text.
    ("2008-10-17", USER_ARN + "${aws:username}", ALICE, USER_ARN + "alice", N),
    ("2008-10-17", USER_ARN + "${aws:username}", ALICE, USER_ARN + "${aws:username}", A),
    (None, USER_ARN + "${aws:username}", ALICE, USER_ARN + "alice", N),
    (None, USER_ARN + "${aws:username}", ALICE, USER_ARN + "${aws:username}", A),
    (None, "arn:aws:s3:::b/${*}", {}, "arn:aws:s3:::b/${anything}", A),  # and its * is a wildcard
]


@pytest.mark.parametrize(("version", "pattern", "context", "resource", "expected"), VARIABLES)
def test_variables_in_resource(
    version: str | None, pattern: str, context: dict[str, Any], resource: str, expected: Decision
) -> None:
    assert (
        decide([allow("s:a", pattern)], action="s:a", resource=resource, context=context, version=version)
        is expected
    )


# (version, condition block, context, expected)
CONDITION_VARIABLES: list[tuple[str | None, dict[str, Any], dict[str, Any], Decision]] = [
    (
        "2012-10-17",
        {"StringEquals": {"s3:prefix": "home/${aws:username}"}},
        {**ALICE, "s3:prefix": "home/alice"},
        A,
    ),
    (
        "2012-10-17",
        {"StringEquals": {"s3:prefix": "home/${aws:username}"}},
        {**ALICE, "s3:prefix": "home/bob"},
        N,
    ),
    ("2012-10-17", {"StringEquals": {"s3:prefix": "home/${aws:username}"}}, {"s3:prefix": "home/"}, N),
    ("2012-10-17", {"StringNotEquals": {"s3:prefix": "home/${aws:username}"}}, {"s3:prefix": "home/"}, A),
    (
        "2012-10-17",
        {"StringEqualsIgnoreCase": {"s3:prefix": "HOME/${aws:username}"}},
        {**ALICE, "s3:prefix": "home/ALICE"},
        A,
    ),
    (
        "2012-10-17",
        {"StringLike": {"s3:prefix": "${aws:username}/*"}},
        {**ALICE, "s3:prefix": "alice/docs"},
        A,
    ),
    (
        "2012-10-17",
        {"StringLike": {"s3:prefix": "${aws:username}/*"}},
        {"aws:username": "a*", "s3:prefix": "abc/docs"},
        N,
    ),
    ("2012-10-17", {"StringLike": {"s3:prefix": "${aws:username, 'x'}/*"}}, {"s3:prefix": "x/docs"}, A),
    ("2012-10-17", {"StringEquals": {"s3:prefix": "${*}"}}, {"s3:prefix": "*"}, A),
    (
        "2012-10-17",
        {"StringEquals": {"aws:ResourceTag/owner": "${aws:PrincipalTag/team}"}},
        {"aws:PrincipalTag/team": "t", "aws:resourcetag/owner": "t"},
        A,
    ),
    (
        "2012-10-17",
        {"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:user/${aws:username}"}},
        {**ALICE, "aws:SourceArn": "arn:aws:iam::1:user/alice"},
        A,
    ),
    (
        "2008-10-17",
        {"StringEquals": {"s3:prefix": "home/${aws:username}"}},
        {**ALICE, "s3:prefix": "home/alice"},
        N,
    ),
    (
        "2008-10-17",
        {"StringEquals": {"s3:prefix": "home/${aws:username}"}},
        {**ALICE, "s3:prefix": "home/${aws:username}"},
        A,
    ),
    (None, {"StringLike": {"s3:prefix": "${aws:username}"}}, {**ALICE, "s3:prefix": "alice"}, N),
]


@pytest.mark.parametrize(("version", "block", "context", "expected"), CONDITION_VARIABLES)
def test_variables_in_conditions(
    version: str | None, block: dict[str, Any], context: dict[str, Any], expected: Decision
) -> None:
    assert decide([allow(Condition=block)], context=context, version=version) is expected


def test_deny_wins_within_one_policy_in_any_order() -> None:
    for statements in ([allow(), deny("svc:*")], [deny("svc:*"), allow()]):
        assert decide(statements) is E
