"""IAM users: create, read, list, rename, delete, tags and permissions boundaries.

DeleteUser refuses while anything still hangs off the user, in AWS's order and wording
(access keys, inline policies, attached policies, group memberships).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import (
    IamBase,
    already_exists,
    delete_conflict,
    limit_exceeded,
    lower_name,
    no_such_entity,
    page,
)
from auroral.iam.model import User, new_id, tag_list, tags_from_params, validate_name, validate_path

MAX_TAGS = 50


def merge_tags(current: dict[str, str], new: dict[str, str], quota: str) -> dict[str, str]:
    merged = {**current, **new}
    if len(merged) > MAX_TAGS:
        # Unconfirmed wording; the code and status are the model's.
        raise limit_exceeded(f"Cannot exceed quota for {quota}: {MAX_TAGS}")
    return merged


def tags_page(tags: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    items = sorted(tag_list(tags), key=lambda t: t["Key"])
    chunk, extra = page(items, lambda t: t["Key"], params)
    return {"Tags": chunk, **extra}


class UserOperations(IamBase):
    def _boundary(self, arn: str | None) -> str | None:
        if not arn:
            return None
        policy = self.directory.get_policy(arn)
        if policy is None:
            raise no_such_entity(f"Scope ARN: {arn} does not exist or is not attachable.")
        return arn

    def CreateUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        path = params.get("Path") or "/"
        validate_name(name, "userName")
        validate_path(path)
        if self.directory.get_user(name) is not None:
            raise already_exists(f"User with name {name} already exists.")
        tags = tags_from_params(params.get("Tags"))
        if len(tags) > MAX_TAGS:
            raise limit_exceeded(f"Cannot exceed quota for TagsPerUser: {MAX_TAGS}")
        user = User(
            name=name,
            path=path,
            user_id=new_id("AIDA"),
            created=ctx.time,
            tags=tags,
            boundary=self._boundary(params.get("PermissionsBoundary")),
        )
        self.directory.save_user(user)
        ctx.record_resource("AWS::IAM::User", name)
        return {"User": self.user_view(user)}

    def GetUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("UserName")
        if not name:
            principal = ctx.principal
            if principal.is_root:
                # AWS answers the root with its ARN and the account as user id, no name or path.
                return {"User": {"UserId": principal.account, "Arn": principal.arn, "CreateDate": ctx.time}}
            if principal.kind != "user":
                raise AwsError(
                    "ValidationError", "Must specify userName when calling with non-User credentials"
                )
            name = principal.name
        return {"User": self.user_view(self._user(name))}

    def ListUsers(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        users = sorted(
            (u for u in self.directory.users.values() if u.path.startswith(prefix)), key=lower_name
        )
        chunk, extra = page(users, lower_name, params)
        # ListUsers does not return tags or boundaries (AWS documents: use GetUser).
        views = []
        for u in chunk:
            view = self.user_view(u, tags=False)
            view.pop("PermissionsBoundary", None)
            views.append(view)
        return {"Users": views, **extra}

    def UpdateUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        old_key = user.name.lower()
        new_name = params.get("NewUserName")
        new_path = params.get("NewPath")
        if new_path:
            validate_path(new_path, "newPath")
        if new_name:
            validate_name(new_name, "newUserName")
            other = self.directory.get_user(new_name)
            if other is not None and other is not user:
                raise already_exists(f"User with name {new_name} already exists.")
        renamed = replace(user, name=new_name or user.name, path=new_path or user.path)
        with self.directory.store.transaction():
            self.directory.save_user(renamed, old_key=old_key)
            if new_name and new_name != user.name:
                for key in list(self.directory.access_keys.values()):
                    if key.user.lower() == old_key:
                        self.directory.save_access_key(replace(key, user=new_name))
        return {}

    def DeleteUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        if any(k.user.lower() == user.name.lower() for k in self.directory.access_keys.values()):
            raise delete_conflict("Cannot delete entity, must delete access keys first.")
        if user.inline:
            raise delete_conflict("Cannot delete entity, must delete policies first.")
        if user.attached:
            raise delete_conflict("Cannot delete entity, must detach all policies first.")
        if user.groups:
            raise delete_conflict("Cannot delete entity, must remove users from group first.")
        self.directory.delete_user(user)
        ctx.record_resource("AWS::IAM::User", user.name)
        return {}

    # --- tags --------------------------------------------------------------------------------

    def TagUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        tags = merge_tags(user.tags, tags_from_params(params["Tags"]), "TagsPerUser")
        self.directory.save_user(replace(user, tags=tags))
        return {}

    def UntagUser(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        removed = set(params["TagKeys"])
        self.directory.save_user(replace(user, tags={k: v for k, v in user.tags.items() if k not in removed}))
        return {}

    def ListUserTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        return tags_page(user.tags, params)

    # --- permissions boundary ----------------------------------------------------------------

    def PutUserPermissionsBoundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        self.directory.save_user(replace(user, boundary=self._boundary(params["PermissionsBoundary"])))
        return {}

    def DeleteUserPermissionsBoundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params["UserName"])
        self.directory.save_user(replace(user, boundary=None))
        return {}
