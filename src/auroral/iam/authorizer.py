"""IAM authorization of every request: the request context keys, the principal's policies, one
evaluation per resource.

The context is built in two parts: keys that depend only on the principal (``aws:userid``,
``aws:PrincipalTag/*``, ...) are cached per access key and directory generation; the per-request
keys (time, source address, region) are added on each call. Policies come compiled and cached
from ``Directory.policies_for``, so an ``authorize`` call is a few dict operations plus the
evaluation itself.

Resource-based policies: sources are registered per ARN prefix (Secrets Manager, KMS). For
``sts:AssumeRole`` (and ``sts:TagSession``, ``sts:SetSourceIdentity``) the role's trust policy plays
that part, as in AWS: within one account a trust policy that names the caller (the user, or the
role session) explicitly is enough even without an identity-policy grant; a trust policy that names
only the account (or the role of a role session) still needs one, so it is only handed to
``evaluate`` when it names the caller.

Credentials from GetSessionToken without MFA may not call IAM, nor STS beyond AssumeRole and
GetCallerIdentity (``session_token_refusal``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from auroral.api.context import Principal, RequestContext
from auroral.api.sigv4 import MSG_INVALID_TOKEN
from auroral.errors import AccessDenied, AwsError
from auroral.iam.directory import Directory
from auroral.iam.model import Role, aws_principals
from auroral.iam.policy import (
    AuthzRequest,
    Decision,
    EvaluationResult,
    Policy,
    access_denied_message,
    evaluate,
    evaluate_trust,
)

ResourcePolicySource = Callable[[str, str], Policy | None]

# Actions a role's trust policy governs (it is the role's resource-based policy for them).
_TRUST_ACTIONS = frozenset({"sts:assumerole", "sts:tagsession", "sts:setsourceidentity"})

# STS operations the credentials of GetSessionToken may call (STS API reference, GetSessionToken).
_SESSION_TOKEN_STS = frozenset({"AssumeRole", "GetCallerIdentity"})

_PRINCIPAL_TYPE = {"root": "Account", "user": "User", "assumed-role": "AssumedRole", "service": "AWSService"}


def _bool(value: bool) -> str:
    return "true" if value else "false"


class IamAuthorizer:
    def __init__(self, directory: Directory, resource_policies: ResourcePolicySource | None = None) -> None:
        self.directory = directory
        self._sources: list[tuple[str, ResourcePolicySource]] = []
        if resource_policies is not None:
            self._sources.append(("", resource_policies))
        self._base_cache: dict[str, tuple[int, dict[str, Any]]] = {}

    def register_resource_policy_source(self, prefix: str, fn: ResourcePolicySource) -> None:
        """``fn(account, resource_arn)`` answers the resource-based policy of ARNs starting with ``prefix``."""
        self._sources.append((prefix, fn))

    # --- context ----------------------------------------------------------------------------

    def principal_keys(self, principal: Principal) -> dict[str, Any]:
        """Global condition keys that depend only on the principal (cached)."""
        cache_key = principal.access_key_id or principal.arn
        generation = self.directory.generation
        hit = self._base_cache.get(cache_key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        keys: dict[str, Any] = {
            "aws:userid": principal.user_id,
            "aws:PrincipalArn": self.directory.principal_arn(principal),
            "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": _PRINCIPAL_TYPE.get(principal.kind, "User"),
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
        }
        if principal.kind == "user":
            keys["aws:username"] = principal.name
        for k, v in principal.tags.items():
            keys[f"aws:PrincipalTag/{k}"] = v
        if principal.tags:
            keys["aws:PrincipalTagKeys"] = list(principal.tags)
        if principal.source_identity:
            keys["aws:SourceIdentity"] = principal.source_identity
        session = self.directory.session(principal.access_key_id) if principal.access_key_id else None
        if session is not None:
            # AWS sets aws:MultiFactorAuthPresent only for temporary credentials; requests signed with
            # long-term access keys carry no such key (IAM user guide, condition keys reference, and the
            # knowledge-center article "mfa-iam-user-aws-cli"), so `Bool ... false` does not match them.
            keys["aws:MultiFactorAuthPresent"] = _bool(principal.mfa)
            keys["aws:TokenIssueTime"] = _iso(session.issued)
            if principal.kind == "assumed-role" and session.session_name:
                keys["aws:RoleSessionName"] = session.session_name
        if len(self._base_cache) > 10_000:
            self._base_cache.clear()
        self._base_cache[cache_key] = (generation, keys)
        return keys

    def request_context(self, ctx: RequestContext, keys: Mapping[str, Any] | None = None) -> dict[str, Any]:
        context = dict(self.principal_keys(ctx.principal))
        context["aws:SourceIp"] = ctx.source_ip
        context["aws:SecureTransport"] = _bool(ctx.secure_transport)
        context["aws:CurrentTime"] = _iso(ctx.time)
        context["aws:EpochTime"] = str(int(ctx.time.timestamp()))
        context["aws:RequestedRegion"] = ctx.region
        if ctx.user_agent:
            context["aws:UserAgent"] = ctx.user_agent
        if keys:
            context.update(keys)
        return context

    # --- decisions --------------------------------------------------------------------------

    def resource_policy(self, principal: Principal, action: str, resource: str) -> Policy | None:
        account = principal.account
        if action.lower() in _TRUST_ACTIONS:
            # A trust policy grants by itself only to principals it names (the user, the role session);
            # one naming the account or the caller's role delegates to identity policies (IAM user
            # guide, "Granting a user permissions to switch roles").
            role = self.directory.role_by_arn(resource)
            if role is None or principal.arn not in aws_principals(role.trust):
                return None
            return self.directory.compile(role.trust, "trust")
        if not self._sources:
            return None
        for prefix, fn in self._sources:
            if resource.startswith(prefix):
                policy = fn(account, resource)
                if policy is not None:
                    return policy
        return None

    def decide(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, Any]
    ) -> EvaluationResult:
        identity, boundary, session = self.directory.policies_for(principal)
        return evaluate(
            AuthzRequest(action, resource, context, principal.arn, principal.account),
            identity,
            boundary=boundary,
            session=session,
            resource_policy=self.resource_policy(principal, action, resource),
            is_root=principal.is_root,
        )

    def authorize_principal(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        source_ip: str,
        secure: bool,
        region: str,
        now: datetime,
        keys: Mapping[str, Any] | None = None,
    ) -> EvaluationResult:
        """One decision for a request that did not come through the API (an IAM database login): the
        same context keys as :meth:`request_context`, the same policies (identity, boundary, session).
        The account root is allowed everything, as in :meth:`authorize`."""
        if principal.is_root:
            return EvaluationResult(Decision.ALLOW, (), "the account root")
        context = dict(self.principal_keys(principal))
        context["aws:SourceIp"] = source_ip
        context["aws:SecureTransport"] = _bool(secure)
        context["aws:CurrentTime"] = _iso(now)
        context["aws:EpochTime"] = str(int(now.timestamp()))
        context["aws:RequestedRegion"] = region
        if keys:
            context.update(keys)
        return self.decide(principal, action, resource, context)

    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        self._check(ctx, action, resources, keys, refuse=(Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY))

    def authorize_unless_denied(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        self._check(ctx, action, resources, keys, refuse=(Decision.EXPLICIT_DENY,))

    def _check(
        self,
        ctx: RequestContext,
        action: str,
        resources: Sequence[str],
        keys: Mapping[str, Any] | None,
        *,
        refuse: tuple[Decision, ...],
    ) -> None:
        principal = ctx.principal
        refusal = session_token_refusal(principal, ctx.service, ctx.operation)
        if refusal is not None:
            raise refusal
        if principal.is_root:
            return
        context = self.request_context(ctx, keys)
        for resource in resources or ("*",):
            result = self.decide(principal, action, resource, context)
            if result.decision in refuse:
                raise AccessDenied(access_denied_message(principal.arn, action, resource, result))

    # --- trust ------------------------------------------------------------------------------

    def trust_allows(
        self, role: Role, principal: Principal, context: Mapping[str, Any], action: str = "sts:AssumeRole"
    ) -> bool:
        """Whether the role's trust policy lets ``principal`` perform ``action`` on it (assume it, tag
        the session, set a source identity); a role session also matches a trust policy that names
        its role."""
        policy = self.directory.compile(role.trust, "trust")
        return evaluate_trust(policy, principal.arn, principal.account, context, action=action)


def session_token_refusal(principal: Principal, service: str, operation: str) -> AwsError | None:
    """Why credentials from GetSessionToken may not call this API, or None.

    "You cannot call any IAM API operations unless MFA authentication information is included in the
    request. You cannot call any STS API except AssumeRole or GetCallerIdentity." (STS API reference,
    GetSessionToken). The IAM refusal is InvalidClientTokenId, "The security token included in the
    request is invalid" (as AWS answers, e.g. dev.classmethod.jp "tsnote-iam-invalidclienttokenid").
    Applies to the root's session credentials too. GetSessionToken credentials are the session
    credentials of a user or the root (a role session is an assumed role).
    """
    if principal.kind not in ("user", "root") or principal.token_expires is None:
        return None
    if service == "iam" and not principal.mfa:
        return AwsError("InvalidClientTokenId", MSG_INVALID_TOKEN, 403)
    if service == "sts" and operation not in _SESSION_TOKEN_STS:
        return AccessDenied(f"Cannot call {operation} with session credentials")
    return None


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
