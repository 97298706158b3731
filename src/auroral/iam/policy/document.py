"""Parse, validate and compile a policy document.

``parse_policy`` validates the way IAM does on write and raises
``AwsError("MalformedPolicyDocument", <IAM's message>)``. IAM reports the *first* failing stage, not
the first failing statement, so validation runs in stages over all statements (the order and the
messages follow the AWS-verified cases in moto's ``tests/test_iam/test_iam_policies.py``):

1. syntax (JSON, element names and types, Effect value, Condition shape) — ``Syntax errors in policy.``
2. principal placement for the policy kind
3. version (managed policies only) — ``Policy document must be version 2012-10-17 or greater.``
4. legacy parsing (Effect case, dates in conditions, ARN shape) — ``The policy failed legacy parsing``
5. unique and alphanumeric Sids, 6. actions present, 7. resource ARN format, 8. action vendor prefixes,
9. resources present (identity-side kinds) / absent (trust).

The result is a ``Policy`` whose statements are compiled once (``PatternSet`` for actions and resources,
``Condition`` objects), with a per-action cache of the statements that can apply to an action.
Size limits are the caller's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auroral.errors import AwsError
from auroral.iam.policy.conditions import (
    Condition,
    ConditionLegacyError,
    ConditionSyntaxError,
    compile_conditions,
)
from auroral.iam.policy.matching import PatternSet
from auroral.iam.policy.principals import PrincipalError, PrincipalSpec, Reach
from auroral.iam.policy.variables import Template, parse_template

PolicyKind = Literal["identity", "resource", "trust", "boundary", "session"]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"

SYNTAX_ERROR = "Syntax errors in policy."
VERSION_REQUIRED = "Policy document must be version 2012-10-17 or greater."
LEGACY_PARSING = "The policy failed legacy parsing"
DUPLICATE_SID = "Statement IDs (SID) in a single policy must be unique."
SID_CHARACTERS = "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
MISSING_ACTIONS = "Policy statement must contain actions."
MISSING_RESOURCES = "Policy statement must contain resources."
VENDOR_REQUIRED = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
PRINCIPAL_NOT_ALLOWED = "Policy document should not specify a principal."
PRINCIPAL_REQUIRED = "Missing required field Principal"
RESOURCE_PROHIBITED = "Has prohibited field Resource."
VENDOR_REGEX = "Resource vendor must be fully qualified and cannot contain regexes."

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PARTITIONS = frozenset(
    {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
)
_BAD_VENDOR = re.compile(r"[^a-zA-Z0-9\-.]")
_SID = re.compile(r"[0-9A-Za-z]*")
_IAM_PATHS = (
    "user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/", "server-certificate/",
    "policy/", "sms-mfa/", "saml-provider/", "oidc-provider/", "report/", "access-report/",
)  # fmt: skip
_IDENTITY_SIDE = frozenset({"identity", "boundary", "session"})
_NO_CTX: Mapping[str, Any] = {}


def malformed(message: str) -> AwsError:
    return AwsError("MalformedPolicyDocument", message, 400)


@dataclass(frozen=True, slots=True)
class StatementRef:
    """Which statement decided: the policy's name (or Id), the statement's Sid and its position."""

    policy: str
    sid: str | None
    index: int


class Statement:
    __slots__ = (
        "actions", "allow", "conditions", "not_action", "not_principal", "not_resource",
        "principal", "ref", "resources",
    )  # fmt: skip

    def __init__(
        self,
        ref: StatementRef,
        allow: bool,
        actions: PatternSet,
        not_action: bool,
        resources: PatternSet | None,
        not_resource: bool,
        conditions: tuple[Condition, ...],
        principal: PrincipalSpec | None,
        not_principal: bool,
    ) -> None:
        self.ref = ref
        self.allow = allow
        self.actions = actions
        self.not_action = not_action
        self.resources = resources
        self.not_resource = not_resource
        self.conditions = conditions
        self.principal = principal
        self.not_principal = not_principal

    def matches_action(self, action: str) -> bool:
        """``action`` lower-cased."""
        return self.actions.matches(action, _NO_CTX) != self.not_action

    def matches_request(self, resource: str, ctx: Mapping[str, Any]) -> bool:
        """Resource and Condition (the action was matched beforehand)."""
        resources = self.resources
        if resources is not None and resources.matches(resource, ctx) == self.not_resource:
            return False
        for condition in self.conditions:  # noqa: SIM110 - a plain loop: this is the hot path
            if not condition.test(ctx):
                return False
        return True

    def matches_principal(
        self, principal_arn: str | None, principal_account: str | None
    ) -> tuple[bool, bool]:
        """(applies, names the principal directly). A statement without Principal applies to everyone."""
        if self.principal is None:
            return True, False
        matched, direct = self.principal.match(principal_arn, principal_account)
        if self.not_principal:
            return not matched, False
        return matched, direct

    def principal_reach(
        self, principal_arn: str | None, principal_account: str | None, *, has_boundary: bool = False
    ) -> Reach | None:
        """How this resource-policy statement reaches the caller (``principals.Reach``), ``None`` if it does
        not apply to it. ``has_boundary``: the caller has a permissions boundary — a Deny with
        ``NotPrincipal`` then applies whatever it lists (IAM user guide, "Permissions boundaries": "The
        NotPrincipal element with a Deny effect will always deny any IAM principal that has a permissions
        boundary policy attached, regardless of the values specified in the NotPrincipal element")."""
        if self.principal is None:
            return Reach.DELEGATED  # no Principal: not a resource-policy grant to anyone in particular
        if self.not_principal:
            if not self.allow and has_boundary:
                return Reach.LIMITED
            matched, _ = self.principal.match(principal_arn, principal_account)
            return None if matched else Reach.LIMITED
        return self.principal.reach(principal_arn, principal_account)


Candidates = tuple[tuple[Statement, ...], tuple[Statement, ...]]


class Policy:
    """A validated, compiled policy. ``document`` is the parsed JSON as written."""

    __slots__ = ("_by_action", "document", "kind", "name", "policy_id", "statements", "version")

    def __init__(
        self,
        document: dict[str, Any],
        statements: tuple[Statement, ...],
        *,
        kind: PolicyKind,
        name: str,
        version: str | None,
        policy_id: str | None,
    ) -> None:
        self.document = document
        self.statements = statements
        self.kind = kind
        self.name = name
        self.version = version
        self.policy_id = policy_id
        self._by_action: dict[str, Candidates] = {}

    def candidates(self, action: str) -> Candidates:
        """(Deny statements, Allow statements) whose Action/NotAction matches ``action`` (lower-cased).
        Cached: a deployment has a few hundred distinct actions."""
        found = self._by_action.get(action)
        if found is None:
            matching = [s for s in self.statements if s.matches_action(action)]
            found = (tuple(s for s in matching if not s.allow), tuple(s for s in matching if s.allow))
            if len(self._by_action) >= 2048:
                self._by_action.clear()
            self._by_action[action] = found
        return found

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, kind={self.kind!r}, statements={len(self.statements)})"


# ---------------------------------------------------------------- validation helpers


def _string_list(value: Any) -> list[str]:
    """Action/Resource-style element: a string or a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise malformed(SYNTAX_ERROR)


def _resource_format_error(resource: str) -> str | None:
    if resource == "*":
        return None
    _scheme, sep, rest = resource.partition(":")
    if not sep:
        return f'Resource {resource} must be in ARN format or "*".'
    partition, sep, rest = rest.partition(":")
    if partition != "*" and partition not in _PARTITIONS:
        parts = rest.split(":")
        fields = [
            parts[0] if parts[0] != "" or len(parts) > 1 else "*",
            parts[1] if len(parts) > 1 else "*",
            parts[2] if len(parts) > 2 else "*",
            ":".join(parts[3:]) if len(parts) > 3 else "*",
        ]
        return f'Partition "{partition}" is not valid for resource "arn:{partition}:{":".join(fields)}".'
    if not sep:
        return VENDOR_REGEX
    service, _, rest = rest.partition(":")
    region, _, rest = rest.partition(":")
    _account, _, resource_id = rest.partition(":")
    if service == "iam":
        if region:
            return f"IAM resource {resource} cannot contain region information."
        if not resource_id.startswith(_IAM_PATHS) and resource_id != "*":
            return f'IAM resource path must either be "*" or start with {", ".join(_IAM_PATHS)}.'
    return None


def _legacy_resource_ok(resource: str) -> bool:
    if resource == "*":
        return True
    if resource.count(":") < 5 and "::" in resource:
        return False
    parts = resource.split(":")
    return len(parts) < 3 or parts[2] != ""


def _action_error(action: str) -> str | None:
    if action == "*":
        return None
    parts = action.split(":")
    if len(parts) == 1:
        return VENDOR_REQUIRED
    if len(parts) > 2:
        return ONE_COLON
    if parts[0] != "*" and _BAD_VENDOR.search(parts[0]):
        return f"Vendor {parts[0]} is not valid"
    return None


def _load(text_or_obj: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(text_or_obj, str):
        try:
            loaded = json.loads(text_or_obj)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
            raise malformed(SYNTAX_ERROR) from None
    else:
        loaded = text_or_obj
    if not isinstance(loaded, Mapping):
        raise malformed(SYNTAX_ERROR)
    return dict(loaded)


# ---------------------------------------------------------------- parse_policy


def parse_policy(
    text_or_obj: str | Mapping[str, Any],
    *,
    kind: PolicyKind = "identity",
    name: str | None = None,
    require_current_version: bool = False,
) -> Policy:
    """Validate ``text_or_obj`` as IAM does on write and compile it.

    ``require_current_version``: managed policies (CreatePolicy, CreatePolicyVersion) must say
    ``"Version": "2012-10-17"``; inline, trust and resource policies may omit it or use 2008-10-17.
    ``name`` labels the policy in ``StatementRef`` (defaults to the document's Id, else "").
    """
    doc = _load(text_or_obj)

    # 1. syntax
    if not set(doc) <= _TOP_KEYS:
        raise malformed(SYNTAX_ERROR)
    version = doc.get("Version")
    if version is not None and version not in (VERSION_2012, VERSION_2008):
        raise malformed(SYNTAX_ERROR)
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise malformed(SYNTAX_ERROR)
    raw_statements = doc.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise malformed(SYNTAX_ERROR)
    allow_vars = version == VERSION_2012
    legacy_failed = False
    conditions: list[tuple[Condition, ...]] = []
    principals: list[PrincipalSpec | None] = []
    for st in raw_statements:
        if not isinstance(st, dict) or not set(st) <= _STATEMENT_KEYS:
            raise malformed(SYNTAX_ERROR)
        if ("Action" in st and "NotAction" in st) or ("Resource" in st and "NotResource" in st):
            raise malformed(SYNTAX_ERROR)
        if "Principal" in st and "NotPrincipal" in st:
            raise malformed(SYNTAX_ERROR)
        effect = st.get("Effect")
        if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
            raise malformed(SYNTAX_ERROR)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in st:
                _string_list(st[key])
        if "Sid" in st and not isinstance(st["Sid"], str):
            raise malformed(SYNTAX_ERROR)
        compiled: tuple[Condition, ...] = ()
        if "Condition" in st:
            try:
                compiled = compile_conditions(st["Condition"], allow_vars=allow_vars)
            except ConditionSyntaxError:
                raise malformed(SYNTAX_ERROR) from None
            except ConditionLegacyError:
                legacy_failed = True
        conditions.append(compiled)
        raw_principal = st.get("Principal", st.get("NotPrincipal"))
        spec: PrincipalSpec | None = None
        if raw_principal is not None and kind not in _IDENTITY_SIDE:
            try:
                spec = PrincipalSpec(raw_principal)
            except PrincipalError as exc:
                raise malformed(exc.message) from None
        principals.append(spec)

    # 2. principal placement
    for st in raw_statements:
        has_principal = "Principal" in st or "NotPrincipal" in st
        if kind in _IDENTITY_SIDE and has_principal:
            raise malformed(PRINCIPAL_NOT_ALLOWED)
        if kind in ("trust", "resource") and not has_principal:
            raise malformed(PRINCIPAL_REQUIRED)

    # 3. version
    if require_current_version and version != VERSION_2012:
        raise malformed(VERSION_REQUIRED)

    # 4. legacy parsing. IAM finds ARN format errors here but reports them after the Sid and action
    #    checks; once one is found, the legacy ARN check is skipped for the elements that follow.
    resource_error: str | None = None
    for st in raw_statements:
        if st["Effect"] not in ("Allow", "Deny"):
            legacy_failed = True
        for key in ("Resource", "NotResource"):
            resources = _string_list(st.get(key, []))
            for resource in resources:
                resource_error = resource_error or _resource_format_error(resource)
            if resource_error is None and not all(_legacy_resource_ok(r) for r in resources):
                legacy_failed = True
    if legacy_failed:
        raise malformed(LEGACY_PARSING)

    # 5. Sids
    seen: set[str] = set()
    for st in raw_statements:
        sid = st.get("Sid")
        if sid:
            if sid in seen:
                raise malformed(DUPLICATE_SID)
            seen.add(sid)
    if kind != "resource" and any(not _SID.fullmatch(st.get("Sid", "")) for st in raw_statements):
        raise malformed(SID_CHARACTERS)

    # 6. actions present
    for st in raw_statements:
        if not _string_list(st.get("Action", st.get("NotAction", []))):
            raise malformed(MISSING_ACTIONS)

    # 7. resource format (the first error found)
    if resource_error is not None:
        raise malformed(resource_error)

    # 8. action vendors
    for st in raw_statements:
        for action in _string_list(st.get("Action", st.get("NotAction", []))):
            error = _action_error(action)
            if error is not None:
                raise malformed(error)

    # 9. Resource presence by kind
    for st in raw_statements:
        resources = _string_list(st.get("Resource", st.get("NotResource", [])))
        if kind in _IDENTITY_SIDE and not resources:
            raise malformed(MISSING_RESOURCES)
        if kind == "trust" and ("Resource" in st or "NotResource" in st):
            raise malformed(RESOURCE_PROHIBITED)

    label = name if name is not None else (policy_id or "")
    statements = tuple(
        _compile_statement(st, i, label, allow_vars, conditions[i], principals[i])
        for i, st in enumerate(raw_statements)
    )
    return Policy(doc, statements, kind=kind, name=label, version=version, policy_id=policy_id)


def _compile_statement(
    st: dict[str, Any],
    index: int,
    label: str,
    allow_vars: bool,
    conditions: tuple[Condition, ...],
    principal: PrincipalSpec | None,
) -> Statement:
    not_action = "NotAction" in st
    actions = PatternSet(_string_list(st["NotAction" if not_action else "Action"]), ignore_case=True)
    not_resource = "NotResource" in st
    resources: PatternSet | None = None
    if "Resource" in st or not_resource:
        patterns: list[str | Template] = []
        for text in _string_list(st["NotResource" if not_resource else "Resource"]):
            template = parse_template(text) if allow_vars else None
            patterns.append(text if template is None else template)
        resources = PatternSet(patterns)
    return Statement(
        StatementRef(label, st.get("Sid"), index),
        st["Effect"] == "Allow",
        actions,
        not_action,
        resources,
        not_resource,
        conditions,
        principal,
        "NotPrincipal" in st,
    )
