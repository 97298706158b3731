"""Resource-based policies on secrets: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy,
ValidateResourcePolicy, and the policy source the IAM authorizer consults for secret ARNs.

Documents are validated with IAM's parser as resource policies (a Principal is required). With
BlockPublicPolicy, an Allow statement whose principal is everyone (``"*"`` or ``{"AWS": "*"}``) and
that has no Condition is refused as AWS refuses "broad access". The authorizer evaluates the stored
policy together with the caller's identity policies (same-account rules: a statement naming the user
allows by itself, an explicit Deny in it denies).
"""

from __future__ import annotations

import json
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.policy import Policy, parse_policy
from auroral.secrets import errors
from auroral.secrets.base import SecretsBase

_CACHE_MAX = 1024


def _statements(text: str) -> list[dict[str, Any]]:
    doc = json.loads(text)
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        return [statements]
    return [s for s in statements or [] if isinstance(s, dict)]


def is_public(text: str) -> bool:
    for st in _statements(text):
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        if principal == "*":
            return True
        if isinstance(principal, dict):
            aws = principal.get("AWS")
            values = aws if isinstance(aws, list) else [aws]
            if "*" in values:
                return True
    return False


class PolicyOperations(SecretsBase):
    def _compile(self, text: str) -> Policy:
        cache = self.compiled_policies
        policy = cache.get(text)
        if policy is None:
            if len(cache) > _CACHE_MAX:
                cache.clear()
            policy = parse_policy(text, kind="resource")
            cache[text] = policy
        return policy

    def _validate(self, text: str) -> list[dict[str, str]]:
        problems: list[dict[str, str]] = []
        try:
            self._compile(text)
        except AwsError as err:
            problems.append({"CheckName": "SYNTAX_CHECK", "ErrorMessage": err.message})
            return problems
        if is_public(text):
            problems.append({"CheckName": "PUBLIC_POLICY_CHECK",
                             "ErrorMessage": "The policy allows broad access to the secret."})
        return problems

    def resource_policy_source(self, account: str, arn: str) -> Policy | None:
        """For ``IamAuthorizer.register_resource_policy_source``: the secret's policy, if it has one."""
        secret = self.records.by_arn(account, arn)
        if secret is None or not secret.policy:
            return None
        try:
            return self._compile(secret.policy)
        except AwsError:
            return None

    def PutResourcePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params["ResourcePolicy"])
        try:
            self._compile(text)
        except AwsError as err:
            raise errors.malformed_policy(err.message) from None
        if params.get("BlockPublicPolicy") and is_public(text):
            raise errors.public_policy()
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            self._not_owned(secret)
            secret.policy = text
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name}

    def GetResourcePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        secret = self._find(ctx, params.get("SecretId"))
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if secret.policy:
            out["ResourcePolicy"] = secret.policy
        return out

    def DeleteResourcePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            self._not_owned(secret)
            secret.policy = None
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name}

    def ValidateResourcePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("SecretId"):
            self._find(ctx, params["SecretId"])
        problems = self._validate(str(params["ResourcePolicy"]))
        out: dict[str, Any] = {"PolicyValidationPassed": not problems}
        if problems:
            out["ValidationErrors"] = problems
        return out
