"""The policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) and the account
authorization report (GetAccountAuthorizationDetails).

The simulator runs the same ``evaluate`` as request authorization, on the entity's policies (or
the given ones) and only the context the caller supplies in ``ContextEntries``, as AWS's does.
Policies are parsed here with their source names so ``MatchedStatements`` can say which policy
decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import IamBase, invalid_input, no_such_entity, page
from auroral.iam.model import Group, Role, User, encode_document, tag_list
from auroral.iam.policy import AuthzRequest, Decision, Policy, PolicyKind, evaluate, parse_policy

# The simulator parses and evaluates caller-supplied documents (up to 128 KiB each, for every action
# and resource given): CPU work proportional to the input. It runs on one worker thread, off the event
# loop that serves every API request and database login, so a large simulation delays only other
# simulations. The matching itself is linear-time (``auroral.wildcard``).
_SIMULATOR = ThreadPoolExecutor(1, thread_name_prefix="iam-simulate")


async def _off_loop(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.get_running_loop().run_in_executor(_SIMULATOR, work)


_DECISIONS = {
    Decision.ALLOW: "allowed",
    Decision.EXPLICIT_DENY: "explicitDeny",
    Decision.IMPLICIT_DENY: "implicitDeny",
}


@dataclass(frozen=True)
class _Source:
    policy_id: str  # SourcePolicyId
    policy_type: str  # SourcePolicyType: user | group | role | aws-managed | user-managed | resource | none
    text: str


def _context(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for entry in entries or []:
        name = entry.get("ContextKeyName")
        values = [str(v) for v in entry.get("ContextKeyValues") or []]
        if not name:
            continue
        kind = str(entry.get("ContextKeyType") or "string")
        context[name] = values if kind.endswith("List") or len(values) != 1 else values[0]
    return context


class SimulateOperations(IamBase):
    def _managed_sources(self, arns: list[str]) -> list[_Source]:
        out = []
        for arn in arns:
            policy = self.directory.get_policy(arn)
            if policy is not None:
                kind = "aws-managed" if policy.aws_managed else "user-managed"
                out.append(_Source(policy.name, kind, policy.document))
        return out

    def _entity_sources(self, entity: User | Group | Role, label: str) -> list[_Source]:
        return [_Source(n, label, t) for n, t in entity.inline.items()] + self._managed_sources(
            entity.attached
        )

    def _principal_sources(self, arn: str) -> tuple[list[_Source], str | None]:
        """(identity policy sources, boundary policy ARN) of the entity ``arn`` names."""
        kind = arn.split(":", 5)[-1].split("/", 1)[0] if arn.count(":") >= 5 else ""
        name = arn.rsplit("/", 1)[-1]
        if kind == "user":
            user = self.directory.get_user(name)
            if user is None or user.arn(self.account) != arn:
                raise no_such_entity(f"The user with name {name} cannot be found.")
            sources = self._entity_sources(user, "user")
            for group_name in user.groups:
                group = self.directory.get_group(group_name)
                if group is not None:
                    sources += self._entity_sources(group, "group")
            return sources, user.boundary
        if kind == "group":
            group = self.directory.get_group(name)
            if group is None or group.arn(self.account) != arn:
                raise no_such_entity(f"The group with name {name} cannot be found.")
            return self._entity_sources(group, "group"), None
        if kind == "role":
            role = self.directory.get_role(name)
            if role is None or role.arn(self.account) != arn:
                raise no_such_entity(f"The role with name {name} cannot be found.")
            return self._entity_sources(role, "role"), role.boundary
        raise invalid_input(f"Invalid Entity Arn: {arn}")

    @staticmethod
    def _parse(source: _Source, kind: PolicyKind) -> Policy:
        try:
            return parse_policy(source.text, kind=kind, name=source.policy_id)
        except AwsError as err:
            if source.policy_type == "none":
                raise invalid_input(err.message) from None
            raise

    def _simulate(
        self,
        params: dict[str, Any],
        sources: list[_Source],
        boundaries: list[_Source],
        caller_arn: str | None,
    ) -> Awaitable[dict[str, Any]]:
        return _off_loop(partial(self._evaluate_all, self.account, params, sources, boundaries, caller_arn))

    def _evaluate_all(
        self,
        own_account: str,
        params: dict[str, Any],
        sources: list[_Source],
        boundaries: list[_Source],
        caller_arn: str | None,
    ) -> dict[str, Any]:
        """Pure work on the given documents (no store access): runs on the simulator thread."""
        types = {s.policy_id: s.policy_type for s in [*sources, *boundaries]}
        identity = [self._parse(s, "identity") for s in sources]
        # An entity has at most one permissions boundary; the simulator takes the first one given.
        boundary = self._parse(boundaries[0], "boundary") if boundaries else None
        resource_policy = None
        if params.get("ResourcePolicy"):
            src = _Source("ResourcePolicy", "resource", params["ResourcePolicy"])
            types[src.policy_id] = src.policy_type
            resource_policy = self._parse(_Source(src.policy_id, "none", src.text), "resource")
        context = _context(params.get("ContextEntries"))
        account = params.get("ResourceOwner") or own_account
        resources = params.get("ResourceArns") or ["*"]
        results: list[dict[str, Any]] = []
        for action in params["ActionNames"]:
            for resource in resources:
                request = AuthzRequest(
                    action, resource, context, caller_arn, own_account if caller_arn else account
                )
                result = evaluate(request, identity, boundary=boundary, resource_policy=resource_policy)
                row: dict[str, Any] = {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": _DECISIONS[result.decision],
                    "MatchedStatements": [
                        {"SourcePolicyId": ref.policy, "SourcePolicyType": types.get(ref.policy, "none")}
                        for ref in result.matched
                    ],
                    "MissingContextValues": [],
                }
                if boundary is not None:
                    allowed = evaluate(request, [boundary]).allowed
                    row["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": allowed}
                results.append(row)
        keyed = list(enumerate(results))
        chunk, extra = page(keyed, lambda r: f"{r[0]:08d}", params)
        return {"EvaluationResults": [r for _, r in chunk], **extra}

    def SimulatePrincipalPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        source_arn = params["PolicySourceArn"]
        sources, boundary_arn = self._principal_sources(source_arn)
        inputs = [
            _Source(f"PolicyInputList.{i}", "none", t)
            for i, t in enumerate(params.get("PolicyInputList") or [], 1)
        ]
        given = params.get("PermissionsBoundaryPolicyInputList") or []
        if given:
            boundaries = [
                _Source(f"PermissionsBoundaryPolicyInputList.{i}", "none", t) for i, t in enumerate(given, 1)
            ]
        else:
            boundaries = self._managed_sources([boundary_arn]) if boundary_arn else []
        caller = params.get("CallerArn") or (source_arn if ":group/" not in source_arn else None)
        return self._simulate(params, [*sources, *inputs], boundaries, caller)

    def SimulateCustomPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        inputs = [
            _Source(f"PolicyInputList.{i}", "none", t) for i, t in enumerate(params["PolicyInputList"], 1)
        ]
        given = params.get("PermissionsBoundaryPolicyInputList") or []
        boundaries = [
            _Source(f"PermissionsBoundaryPolicyInputList.{i}", "none", t) for i, t in enumerate(given, 1)
        ]
        return self._simulate(params, inputs, boundaries, params.get("CallerArn"))

    # --- GetAccountAuthorizationDetails -----------------------------------------------------------

    def GetAccountAuthorizationDetails(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        wanted = set(
            params.get("Filter") or ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]
        )
        d = self.directory

        def inline(entity: User | Group | Role) -> list[dict[str, str]]:
            return [
                {"PolicyName": n, "PolicyDocument": encode_document(t)}
                for n, t in sorted(entity.inline.items())
            ]

        def attached(entity: User | Group | Role) -> list[dict[str, str]]:
            rows = []
            for arn in entity.attached:
                policy = d.get_policy(arn)
                if policy is not None:
                    rows.append({"PolicyName": policy.name, "PolicyArn": arn})
            return rows

        out: dict[str, Any] = {"IsTruncated": False}
        if "User" in wanted:
            users = []
            for u in sorted(d.users.values(), key=lambda x: x.name.lower()):
                row = {
                    **self.user_view(u, tags=False),
                    "UserPolicyList": inline(u),
                    "GroupList": list(u.groups),
                    "AttachedManagedPolicies": attached(u),
                }
                if u.tags:
                    row["Tags"] = tag_list(u.tags)
                users.append(row)
            out["UserDetailList"] = users
        if "Group" in wanted:
            out["GroupDetailList"] = [
                {**self.group_view(g), "GroupPolicyList": inline(g), "AttachedManagedPolicies": attached(g)}
                for g in sorted(d.groups.values(), key=lambda x: x.name.lower())
            ]
        if "Role" in wanted:
            roles = []
            for r in sorted(d.roles.values(), key=lambda x: x.name.lower()):
                view = self.role_view(r)
                view.pop("Description", None)
                view.pop("MaxSessionDuration", None)
                roles.append(
                    {
                        **view,
                        "InstanceProfileList": [],
                        "RolePolicyList": inline(r),
                        "AttachedManagedPolicies": attached(r),
                    }
                )
            out["RoleDetailList"] = roles
        policies = []
        if "LocalManagedPolicy" in wanted:
            policies += sorted(d.policies.values(), key=lambda p: p.name.lower())
        if "AWSManagedPolicy" in wanted:
            # AWS lists only the AWS-managed policies in use in the account.
            policies += [p for p in d.aws_policies.values() if any(d.entities_attached_to(p.arn))]
        if policies or wanted & {"LocalManagedPolicy", "AWSManagedPolicy"}:
            out["Policies"] = [
                {
                    **self.policy_view(p, tags=False),
                    "PolicyVersionList": [self.version_view(p, v) for v in p.versions.values()],
                }
                for p in policies
            ]
        return out
