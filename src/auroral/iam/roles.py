"""IAM roles: trust policies, session duration, tags, boundaries, and service-linked roles.

Service-linked roles are created by ``Directory.create_service_linked_role`` (RDS calls it too)
and are protected: only DeleteServiceLinkedRole removes them, and only when the owning service's
registered check (``Directory.register_slr_deletion_check``) has no objection.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import (
    IamBase,
    already_exists,
    delete_conflict,
    invalid_input,
    limit_exceeded,
    lower_name,
    no_such_entity,
    page,
)
from auroral.iam.model import (
    KIND_DELETION_TASK,
    Role,
    aws_principals,
    new_id,
    tags_from_params,
    validate_name,
    validate_path,
)
from auroral.iam.users import MAX_TAGS, merge_tags, tags_page

_TRUST_QUOTA = ("ACLSizePerRole", 2048)
_LOCAL_ENTITY = re.compile(r"arn:aws:iam::(\d{12}):(user|role)(/.*)?/([\w+=,.@-]+)")


def _max_session(value: Any) -> int:
    if value is None:
        return 3600
    seconds = int(value)
    if seconds < 3600 or seconds > 43200:
        bound = "greater than or equal to 3600" if seconds < 3600 else "less than or equal to 43200"
        raise AwsError(
            "ValidationError",
            f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to satisfy "
            f"constraint: Member must have value {bound}",
        )
    return seconds


class RoleOperations(IamBase):
    def _validate_trust(self, text: str) -> None:
        self.validate_document(text, "trust", _TRUST_QUOTA)
        # AWS refuses trust policies naming users or roles that don't exist (it resolves them to ids).
        for principal in aws_principals(text):
            m = _LOCAL_ENTITY.fullmatch(principal)
            if m is None or m.group(1) != self.account:
                continue
            kind, name = m.group(2), m.group(4)
            entity = self.directory.get_user(name) if kind == "user" else self.directory.get_role(name)
            if entity is None or entity.arn(self.account) != principal:
                raise AwsError(
                    "MalformedPolicyDocument", f'Invalid principal in policy: "AWS":"{principal}"', 400
                )

    def _boundary_arn(self, arn: str | None) -> str | None:
        if not arn:
            return None
        if self.directory.get_policy(arn) is None:
            raise no_such_entity(f"Scope ARN: {arn} does not exist or is not attachable.")
        return arn

    def CreateRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        path = params.get("Path") or "/"
        validate_name(name, "roleName")
        validate_path(path)
        if self.directory.get_role(name) is not None:
            raise already_exists(f"Role with name {name} already exists.")
        trust = params["AssumeRolePolicyDocument"]
        self._validate_trust(trust)
        tags = tags_from_params(params.get("Tags"))
        if len(tags) > MAX_TAGS:
            raise limit_exceeded(f"Cannot exceed quota for TagsPerRole: {MAX_TAGS}")
        role = Role(
            name=name,
            path=path,
            role_id=new_id("AROA"),
            created=ctx.time,
            trust=trust,
            description=params.get("Description"),
            max_session=_max_session(params.get("MaxSessionDuration")),
            tags=tags,
            boundary=self._boundary_arn(params.get("PermissionsBoundary")),
        )
        self.directory.save_role(role)
        ctx.record_resource("AWS::IAM::Role", name)
        view = self.role_view(role)
        view.pop("RoleLastUsed", None)
        return {"Role": view}

    def GetRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Role": self.role_view(self._role(params["RoleName"]))}

    def ListRoles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        roles = sorted(
            (r for r in self.directory.roles.values() if r.path.startswith(prefix)), key=lower_name
        )
        chunk, extra = page(roles, lower_name, params)
        views = []
        for r in chunk:
            view = self.role_view(r, full=False)
            view.pop("PermissionsBoundary", None)
            views.append(view)
        return {"Roles": views, **extra}

    def UpdateRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        self._protect(role)
        changes: dict[str, Any] = {}
        if params.get("Description") is not None:
            changes["description"] = params["Description"]
        if params.get("MaxSessionDuration") is not None:
            changes["max_session"] = _max_session(params["MaxSessionDuration"])
        self.directory.save_role(replace(role, **changes))
        return {}

    def UpdateRoleDescription(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = replace(self._role(params["RoleName"]), description=params["Description"])
        self.directory.save_role(role)
        return {"Role": self.role_view(role)}

    def DeleteRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        self._protect(role)
        if role.inline:
            raise delete_conflict("Cannot delete entity, must delete policies first.")
        if role.attached:
            raise delete_conflict("Cannot delete entity, must detach all policies first.")
        self.directory.delete_role(role)
        ctx.record_resource("AWS::IAM::Role", role.name)
        return {}

    def UpdateAssumeRolePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        self._protect(role)
        self._validate_trust(params["PolicyDocument"])
        self.directory.save_role(replace(role, trust=params["PolicyDocument"]))
        return {}

    # --- tags and boundary -------------------------------------------------------------------

    def TagRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        tags = merge_tags(role.tags, tags_from_params(params["Tags"]), "TagsPerRole")
        self.directory.save_role(replace(role, tags=tags))
        return {}

    def UntagRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        removed = set(params["TagKeys"])
        self.directory.save_role(replace(role, tags={k: v for k, v in role.tags.items() if k not in removed}))
        return {}

    def ListRoleTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return tags_page(self._role(params["RoleName"]).tags, params)

    def PutRolePermissionsBoundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        self._protect(role)
        boundary = self._boundary_arn(params["PermissionsBoundary"])
        self.directory.save_role(replace(role, boundary=boundary))
        return {}

    def DeleteRolePermissionsBoundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        self._protect(role)
        self.directory.save_role(replace(role, boundary=None))
        return {}

    # --- service-linked roles ------------------------------------------------------------------

    def CreateServiceLinkedRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self.directory.create_service_linked_role(
            params["AWSServiceName"], params.get("Description"), params.get("CustomSuffix")
        )
        ctx.record_resource("AWS::IAM::Role", role.name)
        view = self.role_view(role)
        view.pop("RoleLastUsed", None)
        return {"Role": view}

    def DeleteServiceLinkedRole(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = self._role(params["RoleName"])
        if not role.service_linked:
            # Unconfirmed wording.
            raise invalid_input(f"Role {role.name} is not a service-linked role.")
        task_id = f"task{role.path}{role.name}/{uuid.uuid4()}"
        check = self.directory.slr_deletion_checks.get(role.service_linked)
        reason = check(role.service_linked) if check is not None else None
        task: dict[str, Any] = {"id": task_id, "role": role.name, "status": "SUCCEEDED"}
        if reason:
            task.update(status="FAILED", reason=reason, region=ctx.region)
        with self.directory.store.transaction():
            self.directory.store.put(KIND_DELETION_TASK, self.account, task_id, task)
            if not reason:
                self.directory.delete_role(role)
        return {"DeletionTaskId": task_id}

    def GetServiceLinkedRoleDeletionStatus(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        task_id = params["DeletionTaskId"]
        task = self.directory.store.get(KIND_DELETION_TASK, self.account, task_id)
        if task is None:
            # Unconfirmed wording.
            raise no_such_entity(f"Deletion task with id {task_id} cannot be found.")
        out: dict[str, Any] = {"Status": task["status"]}
        if task.get("reason"):
            out["Reason"] = {
                "Reason": task["reason"],
                "RoleUsageList": [{"Region": task.get("region") or ctx.region, "Resources": []}],
            }
        return out
