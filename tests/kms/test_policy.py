"""``evaluate_key_access`` on its own: how a key policy, a grant, the identity policies, the permissions
boundary and the session policy combine — a table of (policies, caller, expected decision, reason).

The rules under test (``auroral.kms.policy``): the key policy (or a grant) must allow; one that names the
caller itself (user ARN, role session ARN, or ``"*"``) is limited by nothing but explicit denies; one
that names the role of the calling session is limited by the role's boundary and the session policy;
one that names the account delegates to IAM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from auroral.iam.policy import AuthzRequest, Decision, EvaluationResult, parse_policy
from auroral.iam.policy.principals import Reach
from auroral.kms.policy import compile_key_policy, evaluate_key_access

A, E, N = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY
ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACTION = "kms:Encrypt"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def stmt(effect: str = "Allow", action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": "*", **extra}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def key_policy(*principals: Any, effect: str = "Allow") -> dict[str, Any]:
    return doc(*(stmt(effect, Principal=p) for p in principals))


KMS_ALL = doc(stmt())
OTHER = doc(stmt(action="s3:*"))
DENY_ENCRYPT = doc(stmt(), stmt("Deny", ACTION))


@dataclass
class Case:
    name: str
    policy: dict[str, Any]
    principal: str = SESSION
    identity: list[dict[str, Any]] = field(default_factory=list)
    boundary: dict[str, Any] | None = None
    session: list[dict[str, Any]] | None = None
    grant: Reach | None = None
    decision: Decision = A
    reason: str | None = None


NO_SESSION = f"no session policy allows the {ACTION} action"
NO_BOUNDARY = f"no permissions boundary allows the {ACTION} action"
NO_IDENTITY = f"no identity-based policy allows the {ACTION} action"
NO_RESOURCE = f"no resource-based policy allows the {ACTION} action"

CASES = [
    # The key policy names the role: its sessions need no identity policy ...
    Case("role named, nothing else", key_policy({"AWS": ROLE})),
    # ... but a session policy that does not allow kms limits it (the finding) ...
    Case("role named, session policy silent", key_policy({"AWS": ROLE}), session=[OTHER],
         decision=N, reason=NO_SESSION),
    Case("role named, session policy allows", key_policy({"AWS": ROLE}), session=[KMS_ALL]),
    # ... and so does the role's permissions boundary, identity policy or not.
    Case("role named, boundary silent", key_policy({"AWS": ROLE}), boundary=OTHER, decision=N, reason=NO_BOUNDARY),
    Case("role named, boundary silent, identity allows", key_policy({"AWS": ROLE}), identity=[KMS_ALL],
         boundary=OTHER, decision=N, reason=NO_BOUNDARY),
    Case("role named, boundary allows", key_policy({"AWS": ROLE}), boundary=KMS_ALL),
    # Naming the session ARN itself: neither the session policy nor the boundary limits the grant.
    Case("session named, session policy silent", key_policy({"AWS": SESSION}), session=[OTHER]),
    Case("session named, boundary silent", key_policy({"AWS": SESSION}), boundary=OTHER),
    Case("another session named", key_policy({"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s2"}),
         decision=N, reason=NO_RESOURCE),
    # Explicit denies win whatever the key policy names.
    Case("session named, session policy denies", key_policy({"AWS": SESSION}), session=[DENY_ENCRYPT],
         decision=E, reason="explicit deny in a session policy"),
    Case("session named, boundary denies", key_policy({"AWS": SESSION}), boundary=DENY_ENCRYPT,
         decision=E, reason="explicit deny in a permissions boundary"),
    Case("role named, key policy denies the session", doc(stmt(Principal={"AWS": ROLE}),
         stmt("Deny", ACTION, Principal={"AWS": SESSION})), decision=E, reason="explicit deny in a resource-based policy"),
    # The user ARN: not limited by its boundary.
    Case("user named, boundary silent", key_policy({"AWS": USER}), principal=USER, boundary=OTHER),
    # Everyone: a wildcard grant is not limited by boundary or session policy (IAM user guide).
    Case("everyone, session policy silent", key_policy("*"), session=[OTHER], boundary=OTHER),
    # The account: delegates to IAM — identity, boundary and session policy all must allow.
    Case("account named, no identity policy", key_policy({"AWS": ROOT}), decision=N, reason=NO_IDENTITY),
    Case("account named, identity allows", key_policy({"AWS": ROOT}), identity=[KMS_ALL]),
    Case("account named, identity allows, session silent", key_policy({"AWS": ROOT}), identity=[KMS_ALL],
         session=[OTHER], decision=N, reason=NO_SESSION),
    Case("account and role named, session silent", key_policy({"AWS": [ROOT, ROLE]}), identity=[KMS_ALL],
         session=[OTHER], decision=N, reason=NO_SESSION),
    # Nothing in the key policy for the caller: IAM alone is not enough.
    Case("nobody named, identity allows", key_policy({"AWS": USER}), identity=[KMS_ALL],
         decision=N, reason=NO_RESOURCE),
    # Grants: to the caller's own ARN by itself; to its role limited like a key policy naming the role.
    Case("grant to the session", key_policy({"AWS": USER}), grant=Reach.DIRECT, session=[OTHER], boundary=OTHER),
    Case("grant to the role", key_policy({"AWS": USER}), grant=Reach.LIMITED),
    Case("grant to the role, session policy silent", key_policy({"AWS": USER}), grant=Reach.LIMITED,
         session=[OTHER], decision=N, reason=NO_SESSION),
    Case("grant to the role, boundary silent", key_policy({"AWS": USER}), grant=Reach.LIMITED,
         boundary=OTHER, decision=N, reason=NO_BOUNDARY),
    Case("grant to the session, session policy denies", key_policy({"AWS": USER}), grant=Reach.DIRECT,
         session=[DENY_ENCRYPT], decision=E, reason="explicit deny in a session policy"),
    # The account root: only the key policy applies to it.
    Case("root, account named", key_policy({"AWS": ROOT}), principal=ROOT),
    Case("root, account not named", key_policy({"AWS": USER}), principal=ROOT, decision=N, reason=NO_RESOURCE),
]


def run(case: Case) -> EvaluationResult:
    policy = compile_key_policy(json.dumps(case.policy))
    identity = [parse_policy(d, name=f"id{i}") for i, d in enumerate(case.identity)]
    boundary = parse_policy(case.boundary, kind="boundary", name="boundary") if case.boundary else None
    session = None if case.session is None else [parse_policy(d, kind="session") for d in case.session]
    principal_arn = ROLE if case.principal == SESSION else case.principal
    context = {"aws:PrincipalArn": principal_arn, "kms:CallerAccount": ACCOUNT}
    return evaluate_key_access(
        AuthzRequest(ACTION, KEY, context, case.principal, ACCOUNT), policy, identity,
        boundary=boundary, session=session, is_root=case.principal == ROOT, grant=case.grant,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    result = run(case)
    assert result.decision is case.decision, result.reason
    if case.reason is not None:
        assert result.reason == case.reason
