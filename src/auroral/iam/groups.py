"""IAM groups and memberships. Membership is stored on the user (its ``groups``), so a user's
effective policies are found without scanning groups."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.iam.base import (
    IamBase,
    already_exists,
    delete_conflict,
    limit_exceeded,
    lower_name,
    no_such_entity,
    page,
)
from auroral.iam.model import Group, new_id, validate_name, validate_path

MAX_GROUPS_PER_USER = 10


class GroupOperations(IamBase):
    def CreateGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["GroupName"]
        path = params.get("Path") or "/"
        validate_name(name, "groupName", 128)
        validate_path(path)
        if self.directory.get_group(name) is not None:
            raise already_exists(f"Group with name {name} already exists.")
        group = Group(name=name, path=path, group_id=new_id("AGPA"), created=ctx.time)
        self.directory.save_group(group)
        ctx.record_resource("AWS::IAM::Group", name)
        return {"Group": self.group_view(group)}

    def GetGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(params["GroupName"])
        members = sorted(self.directory.group_members(group), key=lower_name)
        chunk, extra = page(members, lower_name, params)
        return {
            "Group": self.group_view(group),
            "Users": [self.user_view(u, tags=False) for u in chunk],
            **extra,
        }

    def ListGroups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        groups = sorted(
            (g for g in self.directory.groups.values() if g.path.startswith(prefix)), key=lower_name
        )
        chunk, extra = page(groups, lower_name, params)
        return {"Groups": [self.group_view(g) for g in chunk], **extra}

    def DeleteGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(params["GroupName"])
        if self.directory.group_members(group):
            raise delete_conflict("Cannot delete entity, must remove users from group first.")
        if group.inline:
            raise delete_conflict("Cannot delete entity, must delete policies first.")
        if group.attached:
            raise delete_conflict("Cannot delete entity, must detach all policies first.")
        self.directory.delete_group(group)
        ctx.record_resource("AWS::IAM::Group", group.name)
        return {}

    def AddUserToGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(params["GroupName"])
        user = self._user(params["UserName"])
        current = [g.lower() for g in user.groups]
        if group.name.lower() in current:
            return {}
        if len(current) >= MAX_GROUPS_PER_USER:
            raise limit_exceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
        self.directory.save_user(replace(user, groups=[*user.groups, group.name]))
        return {}

    def RemoveUserFromGroup(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group(params["GroupName"])
        user = self._user(params["UserName"])
        remaining = [g for g in user.groups if g.lower() != group.name.lower()]
        if len(remaining) == len(user.groups):
            # Unconfirmed wording for a user that is not a member.
            raise no_such_entity(f"The user with name {user.name} cannot be found.")
        self.directory.save_user(replace(user, groups=remaining))
        return {}

    def ListGroupsForUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        groups = sorted(
            (g for g in (self.directory.get_group(n) for n in user.groups) if g is not None), key=lower_name
        )
        chunk, extra = page(groups, lower_name, params)
        return {"Groups": [self.group_view(g) for g in chunk], **extra}
