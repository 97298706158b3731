"""The IAM provider: one method per botocore operation, ``(ctx, params) -> output dict``.

The operations live in one mixin per resource family (users, groups, roles, managed policies,
inline policies and attachments, access keys, simulation); this class joins them and adds the
pipeline hooks that need IAM's state: ``resource_tags`` (``aws:ResourceTag/*``), ``authz_keys``
(``iam:PermissionsBoundary`` of the entity acted on, ``iam:ResourceTag/*``) and ``resource_arns``
(the exact ARNs of existing entities, whose paths the request does not carry).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.iam.access_keys import AccessKeyOperations
from auroral.iam.actions import ACTIONS, EXISTING_ENTITY
from auroral.iam.attachments import AttachmentOperations
from auroral.iam.credential_report import CredentialReportOperations
from auroral.iam.directory import SERVICE_LINKED_ROLES
from auroral.iam.groups import GroupOperations
from auroral.iam.model import ManagedPolicy, Role, User
from auroral.iam.policies import PolicyOperations
from auroral.iam.roles import RoleOperations
from auroral.iam.simulate import SimulateOperations
from auroral.iam.users import UserOperations

# Operations whose condition key iam:PermissionsBoundary is the *current* boundary of the entity.
_CURRENT_BOUNDARY = frozenset({
    "AttachUserPolicy", "DetachUserPolicy", "PutUserPolicy", "DeleteUserPolicy", "DeleteUserPermissionsBoundary",
    "AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "DeleteRolePermissionsBoundary",
})  # fmt: skip


class IamService(
    UserOperations,
    GroupOperations,
    RoleOperations,
    PolicyOperations,
    AttachmentOperations,
    AccessKeyOperations,
    SimulateOperations,
    CredentialReportOperations,
):
    service = "iam"

    # --- pipeline hooks -------------------------------------------------------------------------

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        """Tags of the user, role or customer-managed policy whose real ARN is ``arn`` (a spelling
        that is not the entity's real ARN names no entity and has no tags)."""
        entity = self._entity_at(arn)
        return dict(entity.tags) if entity is not None else {}

    def _entity_at(self, arn: str) -> User | Role | ManagedPolicy | None:
        resource = arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        d = self.directory
        found: User | Role | None = None
        if kind == "user":
            found = d.get_user(name)
        elif kind == "role":
            found = d.get_role(name)
        elif kind == "policy":
            return d.policies.get(arn)
        return found if found is not None and found.arn(d.account) == arn else None

    def authz_keys(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        if operation in _CURRENT_BOUNDARY:
            entity = (
                self.directory.get_user(params.get("UserName") or "")
                if "User" in operation
                else self.directory.get_role(params.get("RoleName") or "")
            )
            if entity is not None and entity.boundary:
                keys["iam:PermissionsBoundary"] = entity.boundary
        arns = self.resource_arns(ctx, operation, params) or []
        if arns:
            tags = self.resource_tags(ctx.account, arns[0])
            for k, v in tags.items():
                keys[f"iam:ResourceTag/{k}"] = v
            spec = ACTIONS.get(operation)
            if len(arns) > 1 and spec is not None and spec.resource_tags:
                # The pipeline adds aws:ResourceTag/* for a single resource only; a rename names the
                # entity and its new ARN, and the entity's tags still apply.
                for k, v in tags.items():
                    keys[f"aws:ResourceTag/{k}"] = v
        return keys

    def resource_arns(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> list[str] | None:
        """The real ARNs an operation acts on, or None to use the template (creating an entity).

        An existing entity is resolved the way the handler resolves it (names are case-insensitive,
        the path comes from the entity), so a policy naming ``user/admins/*`` covers every
        spelling of a user in that path. An entity that does not exist is authorized as spelled
        (the handler then answers NoSuchEntity).
        """
        d = self.directory
        kind = EXISTING_ENTITY.get(operation)
        if kind == "user":
            return self._user_arns(ctx, operation, params)
        if kind == "group":
            group = d.get_group(params.get("GroupName") or "")
            return [group.arn(d.account)] if group else None
        if kind == "role":
            role = d.get_role(params.get("RoleName") or "")
            return [role.arn(d.account)] if role else None
        if kind == "policy":
            policy = d.get_policy(params.get("PolicyArn") or "")
            return [policy.arn] if policy else None
        if operation == "GetAccessKeyLastUsed":
            key = d.access_keys.get(params.get("AccessKeyId") or "")
            user = d.get_user(key.user) if key else None
            return [user.arn(d.account)] if user else None
        if operation == "CreateServiceLinkedRole":
            known = SERVICE_LINKED_ROLES.get(params.get("AWSServiceName") or "")
            if known is None:
                return None
            name = known[0] + (f"_{params['CustomSuffix']}" if params.get("CustomSuffix") else "")
            return [f"arn:aws:iam::{d.account}:role/aws-service-role/{params['AWSServiceName']}/{name}"]
        if operation == "GetServiceLinkedRoleDeletionStatus":
            task = str(params.get("DeletionTaskId") or "")
            if task.startswith("task/"):
                return [f"arn:aws:iam::{d.account}:role/{task[5:].rsplit('/', 1)[0]}"]
            return None
        return None

    def _user_arns(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> list[str] | None:
        d = self.directory
        name = params.get("UserName")
        if not name:
            # Without UserName the operation acts on the calling user (access keys, GetUser).
            caller = ctx.principal
            if caller.kind != "user":
                return None  # the root is not authorized; a role session gets a ValidationError
            user = d.get_user(caller.name)
            return [user.arn(d.account) if user is not None else caller.arn]
        user = d.get_user(name)
        if user is None:
            return None
        arns = [user.arn(d.account)]
        if operation == "UpdateUser" and (params.get("NewUserName") or params.get("NewPath")):
            # "the requester must have appropriate permissions on both the source object and the
            # target object" (IAM API reference, UpdateUser)
            moved = replace(
                user, name=params.get("NewUserName") or user.name, path=params.get("NewPath") or user.path
            )
            arns.append(moved.arn(d.account))
        return arns
