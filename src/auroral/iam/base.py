"""What every IAM operation family shares: entity lookups that raise AWS's NoSuchEntity
messages, document validation, response views of records, and Marker/MaxItems pagination."""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from auroral.errors import AwsError
from auroral.iam.directory import Directory
from auroral.iam.model import (
    Group,
    ManagedPolicy,
    PolicyVersion,
    Role,
    User,
    encode_document,
    tag_list,
)
from auroral.iam.policy import PolicyKind, parse_policy

if TYPE_CHECKING:
    from auroral.iam.authorizer import IamAuthorizer

T = TypeVar("T")

DEFAULT_MAX_ITEMS = 100


def no_such_entity(message: str) -> AwsError:
    return AwsError("NoSuchEntity", message, 404)


def already_exists(message: str) -> AwsError:
    return AwsError("EntityAlreadyExists", message, 409)


def delete_conflict(message: str) -> AwsError:
    return AwsError("DeleteConflict", message, 409)


def limit_exceeded(message: str) -> AwsError:
    return AwsError("LimitExceeded", message, 409)


def invalid_input(message: str) -> AwsError:
    return AwsError("InvalidInput", message, 400)


def _non_ws_len(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def page(
    items: Sequence[T], key: Callable[[T], str], params: dict[str, Any]
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` (sorted by ``key``) after ``params["Marker"]``, at most ``MaxItems``.

    The marker is the (opaque, encoded) key of the first item of the next page, so deleting
    items between calls neither skips nor repeats the others.
    """
    max_items = params.get("MaxItems")
    limit = DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
    if not 1 <= limit <= 1000:
        raise AwsError(
            "ValidationError",
            f"1 validation error detected: Value '{limit}' at 'maxItems' failed to satisfy constraint: "
            "Member must have value "
            + ("greater than or equal to 1" if limit < 1 else "less than or equal to 1000"),
        )
    keys = [key(i) for i in items]
    start = 0
    marker = params.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_input("Invalid Marker.") from None
        start = bisect.bisect_left(keys, after)
    chunk = list(items[start : start + limit])
    out: dict[str, Any] = {"IsTruncated": start + limit < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = base64.urlsafe_b64encode(keys[start + limit].encode()).decode()
    return chunk, out


def lower_name(entity: User | Group | Role) -> str:
    return entity.name.lower()


class IamBase:
    """Shared lookups for the operation mixins of ``IamService``."""

    service = "iam"

    def __init__(self, directory: Directory, authorizer: IamAuthorizer | None = None) -> None:
        self.directory = directory
        # The authorizer is not needed by the operations themselves (the pipeline authorizes before
        # dispatch, and the simulator evaluates policies directly); kept for callers that pass it.
        self.authorizer = authorizer

    @property
    def account(self) -> str:
        return self.directory.account

    # --- lookups ---------------------------------------------------------------------------

    def _user(self, name: str) -> User:
        user = self.directory.get_user(name)
        if user is None:
            raise no_such_entity(f"The user with name {name} cannot be found.")
        return user

    def _group(self, name: str) -> Group:
        group = self.directory.get_group(name)
        if group is None:
            raise no_such_entity(f"The group with name {name} cannot be found.")
        return group

    def _role(self, name: str) -> Role:
        role = self.directory.get_role(name)
        if role is None:
            raise no_such_entity(f"The role with name {name} cannot be found.")
        return role

    def _policy(self, arn: str) -> ManagedPolicy:
        _check_policy_arn(arn)
        policy = self.directory.get_policy(arn)
        if policy is None:
            raise no_such_entity(f"Policy {arn} does not exist or is not attachable.")
        return policy

    def _customer_policy(self, arn: str) -> ManagedPolicy:
        policy = self._policy(arn)
        if policy.aws_managed:
            # Unconfirmed wording for writes to AWS-managed policies.
            raise invalid_input(f"Policy {arn} is an AWS managed policy and cannot be modified.")
        return policy

    @staticmethod
    def _protect(role: Role) -> None:
        if role.service_linked:
            raise AwsError(
                "UnmodifiableEntity",
                f"Cannot perform the operation on the protected role '{role.name}' - "
                "this role is only modifiable by AWS",
                400,
            )

    # --- documents -------------------------------------------------------------------------

    @staticmethod
    def validate_document(
        text: str,
        kind: PolicyKind = "identity",
        quota: tuple[str, int] | None = None,
        *,
        managed: bool = False,
    ) -> None:
        """Parse (raising MalformedPolicyDocument) and check the size quota (non-whitespace characters).
        Managed policies must say ``"Version": "2012-10-17"``."""
        if quota is not None and _non_ws_len(text) > quota[1]:
            raise limit_exceeded(f"Cannot exceed quota for {quota[0]}: {quota[1]}")
        parse_policy(text, kind=kind, require_current_version=managed)

    # --- views -----------------------------------------------------------------------------

    def user_view(self, user: User, *, tags: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Path": user.path,
            "UserName": user.name,
            "UserId": user.user_id,
            "Arn": user.arn(self.account),
            "CreateDate": user.created,
        }
        if user.boundary:
            out["PermissionsBoundary"] = _boundary_view(user.boundary)
        if tags and user.tags:
            out["Tags"] = tag_list(user.tags)
        return out

    def group_view(self, group: Group) -> dict[str, Any]:
        return {
            "Path": group.path,
            "GroupName": group.name,
            "GroupId": group.group_id,
            "Arn": group.arn(self.account),
            "CreateDate": group.created,
        }

    def role_view(self, role: Role, *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.role_id,
            "Arn": role.arn(self.account),
            "CreateDate": role.created,
            "AssumeRolePolicyDocument": encode_document(role.trust),
            "MaxSessionDuration": role.max_session,
        }
        if role.description is not None:
            out["Description"] = role.description
        if role.boundary:
            out["PermissionsBoundary"] = _boundary_view(role.boundary)
        if full:
            # ListRoles omits tags and RoleLastUsed (AWS documents this); GetRole includes them.
            if role.tags:
                out["Tags"] = tag_list(role.tags)
            last: dict[str, Any] = {}
            if role.last_used is not None:
                last = {"LastUsedDate": role.last_used, "Region": role.last_used_region or ""}
            out["RoleLastUsed"] = last
        return out

    def policy_view(self, policy: ManagedPolicy, *, tags: bool = True) -> dict[str, Any]:
        users, groups, roles = self.directory.entities_attached_to(policy.arn)
        out: dict[str, Any] = {
            "PolicyName": policy.name,
            "PolicyId": policy.policy_id,
            "Arn": policy.arn,
            "Path": policy.path,
            "DefaultVersionId": policy.default_version,
            "AttachmentCount": len(users) + len(groups) + len(roles),
            "PermissionsBoundaryUsageCount": self.directory.boundary_usage(policy.arn),
            "IsAttachable": True,
            "CreateDate": policy.created,
            "UpdateDate": policy.updated,
        }
        if policy.description:
            out["Description"] = policy.description
        if tags and policy.tags:
            out["Tags"] = tag_list(policy.tags)
        return out

    @staticmethod
    def version_view(
        policy: ManagedPolicy, version: PolicyVersion, *, document: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "VersionId": version.version_id,
            "IsDefaultVersion": version.version_id == policy.default_version,
            "CreateDate": version.created,
        }
        if document:
            out["Document"] = encode_document(version.document)
        return out


def _boundary_view(arn: str) -> dict[str, str]:
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def _check_policy_arn(arn: str) -> None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("policy/"):
        raise invalid_input(f"ARN {arn} is not valid.")
