"""AURORAL.3: which IAM users and roles could create or modify an Aurora cluster with a master password
of their own (not one RDS manages in Secrets Manager), decided by ``auroral.iam.policy.evaluate``: the
same evaluation that authorizes API calls, with explicit Denies, permissions boundaries and condition
keys.

The request contexts are those auroral's authorizer builds (``RdsService.authz_keys``):

* ``rds:CreateDBCluster`` with ``rds:ManageMasterUserPassword`` false (what a create that gives a
  MasterUserPassword carries: present and false), ``rds:DatabaseEngine`` aurora-postgresql, and
  ``rds:StorageEncrypted`` both ways (the caller chooses; either one allowed is enough);
* ``rds:ModifyDBCluster`` with ``rds:ManageMasterUserPassword`` false (a Modify that sets
  MasterUserPassword on an unmanaged cluster, or turns management off on a managed one): the path an
  enforcing Deny on CreateDBCluster alone leaves open.

Principal keys are those of a user's request (or of a session of the role): ``aws:username``,
``aws:userid``, ``aws:PrincipalArn``, ``aws:PrincipalType``, ``aws:PrincipalTag/*``, with
``aws:RequestedRegion`` the home region and ``aws:SecureTransport`` true. Keys that depend on where
a call comes from (``aws:SourceIp``, ``aws:MultiFactorAuthPresent``) are absent: which value a caller
would have is unknown, so a statement conditioned on them decides as for a request without them.

Resources tried: a cluster name nobody has used, every cluster of the region, and the cluster ARNs the
principal's own Allow statements name (wildcards filled in), so that a grant narrowed to some clusters
still counts. Service-linked roles are left out: only their AWS service can assume them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from auroral.errors import AwsError
from auroral.iam.directory import Directory
from auroral.iam.policy import (
    AuthzRequest,
    Decision,
    EvaluationResult,
    Policy,
    StatementRef,
    evaluate,
    parse_policy,
)

CREATE = "rds:CreateDBCluster"
MODIFY = "rds:ModifyDBCluster"
MANAGE_KEY = "rds:ManageMasterUserPassword"
_PROBE_NAME = "auroral-advisor-probe"  # a cluster name the checks try: a new one, not in use
_ALLOW_NOTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'
_MAX_WITNESSES = 50  # resource patterns tried per principal (a policy can name many)


@dataclass(frozen=True)
class PolicySource:
    label: str  # "inline policy <name>" (of the user, group or role) or the managed policy's ARN
    document: str


@dataclass(frozen=True)
class IamPrincipal:
    """One IAM user or role and the policy documents that apply to its requests."""

    kind: str  # "user" | "role"
    name: str
    arn: str
    entity_id: str  # the user's or role's unique ID (AIDA..., AROA...)
    tags: dict[str, str] = field(default_factory=dict)
    identity: list[PolicySource] = field(default_factory=list)
    boundary: PolicySource | None = None


@dataclass(frozen=True)
class Reach:
    """What a principal could do: the decisive result for each action, with the resource it was decided on."""

    create: EvaluationResult
    modify: EvaluationResult
    refs: dict[StatementRef, str]  # each matched statement -> its policy's label


def _compile(sources: list[PolicySource]) -> tuple[list[Policy], dict[str, str]]:
    out: list[Policy] = []
    labels: dict[str, str] = {}
    for i, src in enumerate(sources):
        name = f"#{i}"  # unique per principal: statement refs map back to the source's label
        try:
            out.append(parse_policy(src.document, kind="identity", name=name))
        except AwsError:  # as Directory: a stored document that no longer parses grants nothing
            continue
        labels[name] = src.label
    return out, labels


def _fill(pattern: str, region: str, account: str) -> str | None:
    """A cluster ARN the pattern matches (wildcards in the region and account fields become ours, in
    the name an 'x'), or None if it is not an RDS cluster pattern of this account. A literal other
    region stays: IAM is account-wide, a cluster created there counts too."""
    parts = pattern.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] not in ("rds", "*") or parts[5] not in ("cluster", "*"):
        return None
    if "${" in pattern:
        return None  # policy variables: the probe and the existing clusters stand for these
    region_part = region if ("*" in parts[3] or "?" in parts[3]) else parts[3]
    account_part = account if ("*" in parts[4] or "?" in parts[4]) else parts[4]
    if account_part != account:
        return None  # another account's clusters are not this account's principals' to create
    name = parts[6].replace("*", "x").replace("?", "x") or "x"
    return f"{parts[0]}:{parts[1]}:rds:{region_part}:{account_part}:cluster:{name}"


def _witnesses(sources: list[PolicySource], region: str, account: str) -> list[str]:
    out: list[str] = []
    for src in sources:
        try:
            doc = json.loads(src.document)
        except ValueError:
            continue
        statements = doc.get("Statement", []) if isinstance(doc, dict) else []
        for st in statements if isinstance(statements, list) else [statements]:
            if not isinstance(st, dict) or st.get("Effect") != "Allow":
                continue
            resources = st.get("Resource", [])
            for pattern in resources if isinstance(resources, list) else [resources]:
                arn = _fill(pattern, region, account) if isinstance(pattern, str) else None
                if arn is not None and arn not in out:
                    out.append(arn)
                if len(out) >= _MAX_WITNESSES:
                    return out
    return out


def principal_context(p: IamPrincipal, region: str, now: str) -> dict[str, Any]:
    """The keys auroral's authorizer gives a request of this principal (``IamAuthorizer.principal_keys``
    and ``request_context``), without those that depend on the caller's network or MFA."""
    keys: dict[str, Any] = {
        "aws:PrincipalArn": p.arn,
        "aws:PrincipalAccount": p.arn.split(":")[4],
        "aws:PrincipalType": "User" if p.kind == "user" else "AssumedRole",
        "aws:PrincipalIsAWSService": "false",
        "aws:ViaAWSService": "false",
        "aws:SecureTransport": "true",
        "aws:RequestedRegion": region,
        "aws:CurrentTime": now,
    }
    if p.kind == "user":
        keys["aws:userid"] = p.entity_id
        keys["aws:username"] = p.name
    else:
        keys["aws:userid"] = f"{p.entity_id}:auroral-advisor"
    for k, v in p.tags.items():
        keys[f"aws:PrincipalTag/{k}"] = v
    if p.tags:
        keys["aws:PrincipalTagKeys"] = list(p.tags)
    return keys


def _best(results: Iterator[EvaluationResult]) -> EvaluationResult:
    """An Allow if any try was allowed; else an explicit deny if any; else the last implicit deny."""
    last: EvaluationResult | None = None
    deny: EvaluationResult | None = None
    for r in results:
        if r.decision is Decision.ALLOW:
            return r
        if r.decision is Decision.EXPLICIT_DENY and deny is None:
            deny = r
        last = r
    assert last is not None
    return deny or last


def reach(p: IamPrincipal, *, region: str, account: str, partition: str, cluster_names: list[str],
          now: str) -> Reach:
    identity, labels = _compile(p.identity)
    boundary: Policy | None = None
    if p.boundary is not None:
        try:
            boundary = parse_policy(p.boundary.document, kind="boundary", name="#boundary")
        except AwsError:  # as Directory: a boundary that no longer parses allows nothing
            boundary = parse_policy(_ALLOW_NOTHING, kind="boundary", name="#boundary")
        labels["#boundary"] = f"{p.boundary.label} (permissions boundary)"
    base = principal_context(p, region, now)
    resources = [f"arn:{partition}:rds:{region}:{account}:cluster:{n}" for n in [_PROBE_NAME, *cluster_names]]
    for w in _witnesses(p.identity, region, account):
        if w not in resources:
            resources.append(w)

    def tries(action: str, contexts: list[Mapping[str, Any]]) -> Iterator[EvaluationResult]:
        for resource in resources:
            for ctx in contexts:
                yield evaluate(AuthzRequest(action, resource, ctx, p.arn, account), identity, boundary=boundary)

    create_ctx: list[Mapping[str, Any]] = [
        {**base, MANAGE_KEY: False, "rds:DatabaseEngine": "aurora-postgresql", "rds:StorageEncrypted": enc}
        for enc in (True, False)]
    modify_ctx: list[Mapping[str, Any]] = [{**base, MANAGE_KEY: False, "rds:DatabaseEngine": "aurora-postgresql"}]
    create = _best(tries(CREATE, create_ctx))
    modify = _best(tries(MODIFY, modify_ctx))
    refs: dict[StatementRef, str] = {}
    for r in (create, modify):
        for ref in r.matched:
            refs[ref] = labels.get(ref.policy, ref.policy)
    return Reach(create, modify, refs)


def statement_text(ref: StatementRef, label: str) -> str:
    """``<policy>, Sid '<sid>'`` (or ``Statement[<index>]``, from 0, when it has no Sid)."""
    which = f"Sid {ref.sid!r}" if ref.sid else f"Statement[{ref.index}]"
    return f"{label}, {which}"


def _managed(directory: Directory, arns: list[str]) -> list[PolicySource]:
    out = []
    for arn in arns:
        policy = directory.get_policy(arn)
        if policy is not None:
            out.append(PolicySource(arn, policy.document))
    return out


def _boundary(directory: Directory, arn: str | None) -> PolicySource | None:
    if arn is None:
        return None
    policy = directory.get_policy(arn)
    # As Directory.boundary_document: a boundary ARN that names no policy sets no boundary.
    return PolicySource(arn, policy.document) if policy is not None else None


def iam_principals(directory: Directory) -> list[IamPrincipal]:
    """The account's users and roles (not service-linked ones) with their policies, as
    ``Directory.documents_for_user`` / ``documents_for_role`` gather them. Call with ``directory.lock`` held."""
    out: list[IamPrincipal] = []
    account = directory.account
    for user in sorted(directory.users.values(), key=lambda u: u.name.lower()):
        sources = [PolicySource(f"inline policy {n!r} of user {user.name}", t) for n, t in user.inline.items()]
        sources += _managed(directory, user.attached)
        for group_name in user.groups:
            group = directory.get_group(group_name)
            if group is not None:
                sources += [PolicySource(f"inline policy {n!r} of group {group.name}", t)
                            for n, t in group.inline.items()]
                sources += _managed(directory, group.attached)
        out.append(IamPrincipal("user", user.name, user.arn(account), user.user_id, dict(user.tags), sources,
                                _boundary(directory, user.boundary)))
    for role in sorted(directory.roles.values(), key=lambda r: r.name.lower()):
        if role.service_linked:
            continue
        sources = [PolicySource(f"inline policy {n!r} of role {role.name}", t) for n, t in role.inline.items()]
        sources += _managed(directory, role.attached)
        out.append(IamPrincipal("role", role.name, role.arn(account), role.role_id, dict(role.tags), sources,
                                _boundary(directory, role.boundary)))
    return out
