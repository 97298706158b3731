"""Inline policies and managed-policy attachments of users, groups and roles.

The three entity types behave alike, so each operation is one generic method driven by an
``_Kind`` row (how to find and save the entity, its quotas and the words AWS uses for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import IamBase, limit_exceeded, lower_name, no_such_entity, page
from auroral.iam.model import Group, Role, User, encode_document, validate_name

MAX_ATTACHED = 10

Entity = TypeVar("Entity", User, Group, Role)


@dataclass(frozen=True)
class _Kind:
    label: str  # "user" | "group" | "role"
    param: str  # UserName | GroupName | RoleName
    inline_quota: tuple[str, int]
    attach_quota: str


_USER = _Kind("user", "UserName", ("UserPolicySize", 2048), "PoliciesPerUser")
_GROUP = _Kind("group", "GroupName", ("GroupPolicySize", 5120), "PoliciesPerGroup")
_ROLE = _Kind("role", "RoleName", ("RolePolicySize", 10240), "PoliciesPerRole")


class AttachmentOperations(IamBase):
    def _entity(self, kind: _Kind, params: dict[str, Any]) -> User | Group | Role:
        name = params[kind.param]
        if kind is _USER:
            return self._user(name)
        if kind is _GROUP:
            return self._group(name)
        role = self._role(name)
        return role

    def _save(self, entity: User | Group | Role) -> None:
        if isinstance(entity, User):
            self.directory.save_user(entity)
        elif isinstance(entity, Group):
            self.directory.save_group(entity)
        else:
            self.directory.save_role(entity)

    def _writable(self, kind: _Kind, params: dict[str, Any]) -> User | Group | Role:
        entity = self._entity(kind, params)
        if isinstance(entity, Role):
            self._protect(entity)
        return entity

    # --- inline policies -----------------------------------------------------------------------

    def _put_inline(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._writable(kind, params)
        name, document = params["PolicyName"], params["PolicyDocument"]
        validate_name(name, "policyName", 128)
        inline = {**entity.inline, name: document}
        total = "".join(inline.values())
        self.validate_document(document, "identity")
        if sum(1 for c in total if not c.isspace()) > kind.inline_quota[1]:
            # IAM's wording for the aggregate inline size (e.g. "Maximum policy size of 2048 bytes
            # exceeded for user alice"), not the "Cannot exceed quota for ..." of managed policies.
            raise limit_exceeded(
                f"Maximum policy size of {kind.inline_quota[1]} bytes exceeded for {kind.label} {entity.name}"
            )
        self._save(replace(entity, inline=inline))
        return {}

    def _get_inline(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._entity(kind, params)
        name = params["PolicyName"]
        if name not in entity.inline:
            raise no_such_entity(f"The {kind.label} policy with name {name} cannot be found.")
        return {
            kind.param: entity.name,
            "PolicyName": name,
            "PolicyDocument": encode_document(entity.inline[name]),
        }

    def _delete_inline(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._writable(kind, params)
        name = params["PolicyName"]
        if name not in entity.inline:
            raise no_such_entity(f"The {kind.label} policy with name {name} cannot be found.")
        self._save(replace(entity, inline={k: v for k, v in entity.inline.items() if k != name}))
        return {}

    def _list_inline(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._entity(kind, params)
        names = sorted(entity.inline)
        chunk, extra = page(names, lambda n: n, params)
        return {"PolicyNames": chunk, **extra}

    def PutUserPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(_USER, params)

    def PutGroupPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(_GROUP, params)

    def PutRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(_ROLE, params)

    def GetUserPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._get_inline(_USER, params)

    def GetGroupPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._get_inline(_GROUP, params)

    def GetRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._get_inline(_ROLE, params)

    def DeleteUserPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(_USER, params)

    def DeleteGroupPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(_GROUP, params)

    def DeleteRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(_ROLE, params)

    def ListUserPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(_USER, params)

    def ListGroupPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(_GROUP, params)

    def ListRolePolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(_ROLE, params)

    # --- managed-policy attachments ------------------------------------------------------------

    def _attach(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._writable(kind, params)
        policy = self._policy(params["PolicyArn"])
        if policy.aws_managed and policy.path.startswith("/aws-service-role/"):
            raise AwsError(
                "PolicyNotAttachable", "Cannot attach a Service Role Policy to a Customer Role.", 400
            )
        if policy.arn in entity.attached:
            return {}
        if len(entity.attached) >= MAX_ATTACHED:
            raise limit_exceeded(f"Cannot exceed quota for {kind.attach_quota}: {MAX_ATTACHED}")
        self._save(replace(entity, attached=[*entity.attached, policy.arn]))
        return {}

    def _detach(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._writable(kind, params)
        arn = params["PolicyArn"]
        if arn not in entity.attached:
            raise no_such_entity(f"Policy {arn} was not found.")
        self._save(replace(entity, attached=[a for a in entity.attached if a != arn]))
        return {}

    def _list_attached(self, kind: _Kind, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._entity(kind, params)
        prefix = params.get("PathPrefix") or "/"
        rows = []
        for arn in entity.attached:
            policy = self.directory.get_policy(arn)
            if policy is not None and policy.path.startswith(prefix):
                rows.append({"PolicyName": policy.name, "PolicyArn": arn})
        rows.sort(key=lambda r: r["PolicyArn"])
        chunk, extra = page(rows, lambda r: r["PolicyArn"], params)
        return {"AttachedPolicies": chunk, **extra}

    def AttachUserPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(_USER, params)

    def AttachGroupPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(_GROUP, params)

    def AttachRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(_ROLE, params)

    def DetachUserPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(_USER, params)

    def DetachGroupPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(_GROUP, params)

    def DetachRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(_ROLE, params)

    def ListAttachedUserPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(_USER, params)

    def ListAttachedGroupPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(_GROUP, params)

    def ListAttachedRolePolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(_ROLE, params)

    def ListEntitiesForPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._policy(params["PolicyArn"])
        entity_filter = params.get("EntityFilter")
        usage = params.get("PolicyUsageFilter")
        prefix = params.get("PathPrefix") or "/"
        users: list[User] = []
        groups: list[Group] = []
        roles: list[Role] = []
        if usage != "PermissionsBoundary":
            users, groups, roles = self.directory.entities_attached_to(policy.arn)
        if usage != "PermissionsPolicy":
            users += [u for u in self.directory.users.values() if u.boundary == policy.arn and u not in users]
            roles += [r for r in self.directory.roles.values() if r.boundary == policy.arn and r not in roles]
        rows: list[tuple[str, str, dict[str, str]]] = []
        if entity_filter in (None, "User", "LocalManagedPolicy", "AWSManagedPolicy"):
            rows += _rows("User", users, prefix, lambda u: {"UserName": u.name, "UserId": u.user_id})
        if entity_filter in (None, "Group", "LocalManagedPolicy", "AWSManagedPolicy"):
            rows += _rows("Group", groups, prefix, lambda g: {"GroupName": g.name, "GroupId": g.group_id})
        if entity_filter in (None, "Role", "LocalManagedPolicy", "AWSManagedPolicy"):
            rows += _rows("Role", roles, prefix, lambda r: {"RoleName": r.name, "RoleId": r.role_id})
        rows.sort(key=lambda r: r[1])
        chunk, extra = page(rows, lambda r: r[1], params)
        return {
            "PolicyUsers": [r[2] for r in chunk if r[0] == "User"],
            "PolicyGroups": [r[2] for r in chunk if r[0] == "Group"],
            "PolicyRoles": [r[2] for r in chunk if r[0] == "Role"],
            **extra,
        }


def _rows(
    label: str, entities: list[Entity], prefix: str, view: Callable[[Entity], dict[str, str]]
) -> list[tuple[str, str, dict[str, str]]]:
    return [(label, f"{label}\x00{lower_name(e)}", view(e)) for e in entities if e.path.startswith(prefix)]
