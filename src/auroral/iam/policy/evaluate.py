"""Same-account request evaluation (IAM user guide, ``reference_policies_evaluation-logic`` and
``..._policy-eval-denyallow``).

1. An explicit Deny in any applicable policy — identity-based, resource-based, permissions boundary,
   session — wins. (The account root is only subject to resource-based policies.) A resource-policy Deny
   with ``NotPrincipal`` applies to every principal that has a permissions boundary, as AWS documents.
2. A resource-based policy Allow that names the requesting principal directly — the IAM user, the role
   *session* ARN, or everyone (``"*"``) — allows, without consulting the boundary or the session policy:
   AWS documents that none of identity, boundary or session policy limits such a grant by implicit deny.
3. An Allow that names the *role* of the calling session grants without an identity-based Allow, but the
   boundary and the session policy limit it ("Resource-based policies that grant permissions to an IAM
   role ARN are limited by an implicit deny in a permissions boundary or session policy").
4. An Allow that names only the caller's account delegates to the account: it grants nothing by itself.
5. Otherwise an identity-based Allow (or a grant of 3.) is needed, *and* the boundary (if set) must Allow,
   *and* the session policies (if any were passed: ``None`` and ``[]`` both mean "no session policy")
   must Allow. Anything else is an implicit deny.

See ``principals.Reach`` for the classification and the documentation it follows.

The ``reason`` strings are the phrases AWS puts in AccessDenied messages (``troubleshoot_access-denied``):
"with an explicit deny in a <type>" / "because no <type> allows the <action> action".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auroral.iam.policy.document import Policy, Statement, StatementRef
from auroral.iam.policy.principals import Reach


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


IDENTITY = "identity-based policy"
RESOURCE = "resource-based policy"
BOUNDARY = "permissions boundary"
SESSION = "session policy"


@dataclass(frozen=True)
class AuthzRequest:
    action: str  # "rds:CreateDBCluster"
    resource: str  # one ARN or "*"
    context: Mapping[str, Any] = field(default_factory=dict)  # condition keys, any case
    principal_arn: str | None = None
    principal_account: str | None = None

    def lower_context(self) -> dict[str, Any]:
        """The context with lower-cased keys (condition keys are case-insensitive). ``evaluate`` builds
        it once per call; it is not cached on the request (functools.cached_property takes a lock)."""
        return {key.lower(): value for key, value in self.context.items()}


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    decision: Decision
    matched: tuple[StatementRef, ...]
    reason: str  # "explicit deny in an identity-based policy", "no permissions boundary allows the X action"
    policy_type: str | None = None  # which policy type decided a denial (IDENTITY, BOUNDARY, ...)

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def _article(policy_type: str) -> str:
    return "an" if policy_type[0] in "aeiou" else "a"


def _explicit(policy_type: str, refs: tuple[StatementRef, ...]) -> EvaluationResult:
    return EvaluationResult(
        Decision.EXPLICIT_DENY, refs, f"explicit deny in {_article(policy_type)} {policy_type}", policy_type
    )


def _implicit(policy_type: str, action: str) -> EvaluationResult:
    return EvaluationResult(
        Decision.IMPLICIT_DENY, (), f"no {policy_type} allows the {action} action", policy_type
    )


def access_denied_message(principal_arn: str, action: str, resource: str, result: EvaluationResult) -> str:
    """AWS's AccessDenied text, e.g. ``User: arn:aws:iam::123456789012:user/bob is not authorized to
    perform: rds:CreateDBCluster on resource: arn:aws:rds:...:cluster:c1 because no identity-based policy
    allows the rds:CreateDBCluster action``."""
    if result.decision is Decision.EXPLICIT_DENY:
        tail = f"with an {result.reason}"
    else:
        tail = f"because {result.reason}"
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {tail}"


# ---------------------------------------------------------------- statement scans


def _denies(
    policies: Sequence[Policy], action: str, resource: str, ctx: Mapping[str, Any]
) -> tuple[StatementRef, ...]:
    found: list[StatementRef] = []
    for policy in policies:
        for st in policy.candidates(action)[0]:
            if st.matches_request(resource, ctx):
                found.append(st.ref)
    return tuple(found)


def _first_allow(
    policies: Sequence[Policy], action: str, resource: str, ctx: Mapping[str, Any]
) -> Statement | None:
    for policy in policies:
        for st in policy.candidates(action)[1]:
            if st.matches_request(resource, ctx):
                return st
    return None


def resource_scan(
    policy: Policy,
    request: AuthzRequest,
    action: str,
    ctx: Mapping[str, Any],
    allow: bool,
    *,
    has_boundary: bool = False,
) -> list[tuple[Statement, Reach]]:
    """Statements of a resource-based policy that apply to this principal, with how each reaches it
    (``principals.Reach``). ``action`` lower-cased, ``ctx`` from ``request.lower_context()``."""
    out: list[tuple[Statement, Reach]] = []
    for st in policy.candidates(action)[1 if allow else 0]:
        reach = st.principal_reach(request.principal_arn, request.principal_account, has_boundary=has_boundary)
        if reach is not None and st.matches_request(request.resource, ctx):
            out.append((st, reach))
    return out


def limits(
    request: AuthzRequest,
    action: str,
    ctx: Mapping[str, Any],
    boundary: Policy | None,
    session: Sequence[Policy] | None,
) -> tuple[EvaluationResult | None, list[StatementRef]]:
    """The implicit deny of the permissions boundary or the session policies, if either does not allow
    (explicit denies were checked before); else the statements that allowed."""
    matched: list[StatementRef] = []
    if boundary is not None:
        limit = _first_allow((boundary,), action, request.resource, ctx)
        if limit is None:
            return _implicit(BOUNDARY, request.action), matched
        matched.append(limit.ref)
    if session:
        limit = _first_allow(session, action, request.resource, ctx)
        if limit is None:
            return _implicit(SESSION, request.action), matched
        matched.append(limit.ref)
    return None, matched


# ---------------------------------------------------------------- evaluate


def evaluate(
    request: AuthzRequest,
    identity: Sequence[Policy],
    *,
    boundary: Policy | None = None,
    session: Sequence[Policy] | None = None,
    resource_policy: Policy | None = None,
    is_root: bool = False,
) -> EvaluationResult:
    action = request.action.lower()
    ctx = request.lower_context()
    resource = request.resource

    # 1. explicit deny, in every applicable policy.
    if resource_policy is not None:
        denied = resource_scan(resource_policy, request, action, ctx, allow=False, has_boundary=boundary is not None)
        if denied:
            return _explicit(RESOURCE, tuple(st.ref for st, _ in denied))
    if is_root:
        # The root user is allowed everything its account owns; identity policies, boundaries and
        # session policies do not apply to it (SCPs, which could, do not exist here).
        return EvaluationResult(Decision.ALLOW, (), "account root user")
    refs = _denies(identity, action, resource, ctx)
    if refs:
        return _explicit(IDENTITY, refs)
    if boundary is not None:
        refs = _denies((boundary,), action, resource, ctx)
        if refs:
            return _explicit(BOUNDARY, refs)
    if session:
        refs = _denies(session, action, resource, ctx)
        if refs:
            return _explicit(SESSION, refs)

    # 2. a resource-policy grant naming this principal directly is limited by neither the boundary nor
    #    the session policy; 3. one naming its role grants, limited by both; 4. one naming its account
    #    delegates to the identity-based policies.
    resource_allow: Statement | None = None
    if resource_policy is not None:
        for st, reach in resource_scan(resource_policy, request, action, ctx, allow=True):
            if reach is Reach.DIRECT:
                return EvaluationResult(Decision.ALLOW, (st.ref,), f"allowed by a {RESOURCE}")
            if reach is Reach.LIMITED and resource_allow is None:
                resource_allow = st

    # 5. identity (or role-grant) allow, then every limiting policy must allow too.
    grant = _first_allow(identity, action, resource, ctx) or resource_allow
    if grant is None:
        return _implicit(IDENTITY, request.action)
    denial, matched = limits(request, action, ctx, boundary, session)
    if denial is not None:
        return denial
    return EvaluationResult(Decision.ALLOW, (grant.ref, *matched), "allowed")


def evaluate_trust(
    policy: Policy,
    principal_arn: str | None,
    principal_account: str | None,
    context: Mapping[str, Any],
    *,
    action: str = "sts:AssumeRole",
) -> bool:
    """Does the role's trust policy let this principal perform ``action`` (sts:AssumeRole,
    sts:TagSession, ...)? A matching Deny wins over any Allow."""
    request = AuthzRequest(action, "*", context, principal_arn, principal_account)
    ctx = request.lower_context()
    lowered = request.action.lower()
    if resource_scan(policy, request, lowered, ctx, allow=False):
        return False
    return bool(resource_scan(policy, request, lowered, ctx, allow=True))
