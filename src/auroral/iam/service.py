"""The IAM provider: one method per botocore operation, ``(ctx, params) -> output dict``.

The operations live in one mixin per resource family (users, groups, roles, managed policies,
inline policies and attachments, access keys, simulation); this class joins them and adds the
pipeline hooks that need IAM's state: ``resource_tags`` (``aws:ResourceTag/*``), ``authz_keys``
(``iam:PermissionsBoundary`` of the entity acted on, ``iam:ResourceTag/*``) and ``resource_arns``
(the exact ARNs of existing entities, whose paths the request does not carry).
"""

from __future__ import annotations

from typing import Any

from auroral.api.context import RequestContext
from auroral.iam.access_keys import AccessKeyOperations
from auroral.iam.attachments import AttachmentOperations
from auroral.iam.directory import SERVICE_LINKED_ROLES
from auroral.iam.groups import GroupOperations
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
):
    service = "iam"

    # --- pipeline hooks -------------------------------------------------------------------------

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        """Tags of the user, role or customer-managed policy ``arn`` names (matched by name, so a
        template ARN without the entity's path still finds it)."""
        resource = arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if kind == "user":
            user = self.directory.get_user(name)
            return dict(user.tags) if user else {}
        if kind == "role":
            role = self.directory.get_role(name)
            return dict(role.tags) if role else {}
        if kind == "policy":
            policy = self.directory.policies.get(arn)
            return dict(policy.tags) if policy else {}
        return {}

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
        for arn in self.resource_arns(ctx, operation, params) or []:
            for k, v in self.resource_tags(ctx.account, arn).items():
                keys[f"iam:ResourceTag/{k}"] = v
            break
        return keys

    def resource_arns(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> list[str] | None:
        """The exact resource ARNs of an operation on an existing entity, or None to use the template."""
        d = self.directory
        if operation in (
            "GetUser",
            "CreateAccessKey",
            "ListAccessKeys",
            "UpdateAccessKey",
            "DeleteAccessKey",
        ) and (not params.get("UserName")):
            return [ctx.principal.arn] if ctx.principal.kind == "user" else None
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
        if operation.startswith("Create") and operation != "CreatePolicyVersion":
            return None  # the new entity's ARN comes from the request (template)
        if params.get("UserName") and not params.get("GroupName"):
            user = d.get_user(params["UserName"])
            return [user.arn(d.account)] if user else None
        if params.get("RoleName"):
            role = d.get_role(params["RoleName"])
            return [role.arn(d.account)] if role else None
        if params.get("GroupName"):
            group = d.get_group(params["GroupName"])
            return [group.arn(d.account)] if group else None
        return None
