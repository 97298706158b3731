"""Authorization table entries for IAM (Service Authorization Reference, "Actions defined by AWS
Identity and Access Management").

Templates use the request's parameters. An operation on an *existing* entity (the ``*_NAMED``
templates and ``{PolicyArn}``) is never authorized on its template: the request spells a name
(any case) without the entity's path, so ``IamService.resource_arns`` resolves the entity as IAM
does and authorizes its real ARN (``EXISTING_ENTITY`` says which kind each operation names).
Creating an entity is authorized on the template, which is the new entity's ARN.
"""

from __future__ import annotations

from collections.abc import Mapping

from auroral.api.actions import ActionSpec

# IAM is one directory whose entities' ARNs are ``arn:aws:iam::`` (``model.User.arn``...) whatever region
# a call is signed for: a template built from the signing region's partition (``arn:aws-cn:iam::`` for a
# call signed for cn-north-1) would authorize an ARN the created entity never has, past any Deny on
# ``arn:aws:iam::<acct>:user/admins/*``. Templates therefore name the directory's partition.
_USER = "arn:aws:iam::{account}:user{Path|/}{UserName}"
_USER_NAMED = "arn:aws:iam::{account}:user/{UserName}"
_GROUP = "arn:aws:iam::{account}:group{Path|/}{GroupName}"
_GROUP_NAMED = "arn:aws:iam::{account}:group/{GroupName}"
_ROLE = "arn:aws:iam::{account}:role{Path|/}{RoleName}"
_ROLE_NAMED = "arn:aws:iam::{account}:role/{RoleName}"
_POLICY_NEW = "arn:aws:iam::{account}:policy{Path|/}{PolicyName}"
_POLICY = "{PolicyArn}"
_SLR = "arn:aws:iam::{account}:role/aws-service-role/{AWSServiceName}/*"

_BOUNDARY = {"iam:PermissionsBoundary": "PermissionsBoundary"}
_POLICY_ARN = {"iam:PolicyARN": "PolicyArn"}


def _spec(
    action: str,
    resource: str = "*",
    *,
    read: bool = False,
    tags: bool = False,
    keys: Mapping[str, str] | None = None,
    request_tags: str | None = None,
    tag_keys: str | None = None,
    tag_on_create: str | None = None,
) -> ActionSpec:
    return ActionSpec(
        f"iam:{action}",
        (resource,),
        keys=dict(keys or {}),
        request_tags=request_tags,
        tag_keys=tag_keys,
        resource_tags=tags,
        read_only=read,
        tag_on_create=(tag_on_create, "Tags") if tag_on_create else None,
    )


ACTIONS: dict[str, ActionSpec] = {
    # users
    "CreateUser": _spec("CreateUser", _USER, keys=_BOUNDARY, request_tags="Tags", tag_on_create="iam:TagUser"),
    "GetUser": _spec("GetUser", _USER_NAMED, read=True, tags=True),
    "ListUsers": _spec("ListUsers", "arn:aws:iam::{account}:user/*", read=True),
    "UpdateUser": _spec("UpdateUser", _USER_NAMED, tags=True),
    "DeleteUser": _spec("DeleteUser", _USER_NAMED, tags=True),
    "TagUser": _spec("TagUser", _USER_NAMED, tags=True, request_tags="Tags"),
    "UntagUser": _spec("UntagUser", _USER_NAMED, tags=True, tag_keys="TagKeys"),
    "ListUserTags": _spec("ListUserTags", _USER_NAMED, read=True, tags=True),
    "PutUserPermissionsBoundary": _spec("PutUserPermissionsBoundary", _USER_NAMED, tags=True, keys=_BOUNDARY),
    "DeleteUserPermissionsBoundary": _spec("DeleteUserPermissionsBoundary", _USER_NAMED, tags=True),
    # groups
    "CreateGroup": _spec("CreateGroup", _GROUP),
    "GetGroup": _spec("GetGroup", _GROUP_NAMED, read=True),
    "ListGroups": _spec("ListGroups", "arn:aws:iam::{account}:group/*", read=True),
    "DeleteGroup": _spec("DeleteGroup", _GROUP_NAMED),
    "AddUserToGroup": _spec("AddUserToGroup", _GROUP_NAMED),
    "RemoveUserFromGroup": _spec("RemoveUserFromGroup", _GROUP_NAMED),
    "ListGroupsForUser": _spec("ListGroupsForUser", _USER_NAMED, read=True, tags=True),
    # roles
    "CreateRole": _spec("CreateRole", _ROLE, keys=_BOUNDARY, request_tags="Tags", tag_on_create="iam:TagRole"),
    "GetRole": _spec("GetRole", _ROLE_NAMED, read=True, tags=True),
    "ListRoles": _spec("ListRoles", "arn:aws:iam::{account}:role/*", read=True),
    "UpdateRole": _spec("UpdateRole", _ROLE_NAMED, tags=True),
    "UpdateRoleDescription": _spec("UpdateRoleDescription", _ROLE_NAMED, tags=True),
    "DeleteRole": _spec("DeleteRole", _ROLE_NAMED, tags=True),
    "UpdateAssumeRolePolicy": _spec("UpdateAssumeRolePolicy", _ROLE_NAMED, tags=True),
    "TagRole": _spec("TagRole", _ROLE_NAMED, tags=True, request_tags="Tags"),
    "UntagRole": _spec("UntagRole", _ROLE_NAMED, tags=True, tag_keys="TagKeys"),
    "ListRoleTags": _spec("ListRoleTags", _ROLE_NAMED, read=True, tags=True),
    "PutRolePermissionsBoundary": _spec("PutRolePermissionsBoundary", _ROLE_NAMED, tags=True, keys=_BOUNDARY),
    "DeleteRolePermissionsBoundary": _spec("DeleteRolePermissionsBoundary", _ROLE_NAMED, tags=True),
    "CreateServiceLinkedRole": _spec(
        "CreateServiceLinkedRole", _SLR, keys={"iam:AWSServiceName": "AWSServiceName"}
    ),
    "DeleteServiceLinkedRole": _spec("DeleteServiceLinkedRole", _ROLE_NAMED, tags=True),
    "GetServiceLinkedRoleDeletionStatus": _spec(
        "GetServiceLinkedRoleDeletionStatus", "arn:aws:iam::{account}:role/*", read=True
    ),
    # managed policies
    "CreatePolicy": _spec("CreatePolicy", _POLICY_NEW, request_tags="Tags", tag_on_create="iam:TagPolicy"),
    "GetPolicy": _spec("GetPolicy", _POLICY, read=True, tags=True),
    "ListPolicies": _spec("ListPolicies", "arn:aws:iam::{account}:policy/*", read=True),
    "DeletePolicy": _spec("DeletePolicy", _POLICY, tags=True),
    "CreatePolicyVersion": _spec("CreatePolicyVersion", _POLICY, tags=True),
    "GetPolicyVersion": _spec("GetPolicyVersion", _POLICY, read=True, tags=True),
    "ListPolicyVersions": _spec("ListPolicyVersions", _POLICY, read=True, tags=True),
    "DeletePolicyVersion": _spec("DeletePolicyVersion", _POLICY, tags=True),
    "SetDefaultPolicyVersion": _spec("SetDefaultPolicyVersion", _POLICY, tags=True),
    "TagPolicy": _spec("TagPolicy", _POLICY, tags=True, request_tags="Tags"),
    "UntagPolicy": _spec("UntagPolicy", _POLICY, tags=True, tag_keys="TagKeys"),
    "ListPolicyTags": _spec("ListPolicyTags", _POLICY, read=True, tags=True),
    "ListEntitiesForPolicy": _spec("ListEntitiesForPolicy", _POLICY, read=True, tags=True),
    # inline policies
    "PutUserPolicy": _spec("PutUserPolicy", _USER_NAMED, tags=True),
    "GetUserPolicy": _spec("GetUserPolicy", _USER_NAMED, read=True, tags=True),
    "ListUserPolicies": _spec("ListUserPolicies", _USER_NAMED, read=True, tags=True),
    "DeleteUserPolicy": _spec("DeleteUserPolicy", _USER_NAMED, tags=True),
    "PutGroupPolicy": _spec("PutGroupPolicy", _GROUP_NAMED),
    "GetGroupPolicy": _spec("GetGroupPolicy", _GROUP_NAMED, read=True),
    "ListGroupPolicies": _spec("ListGroupPolicies", _GROUP_NAMED, read=True),
    "DeleteGroupPolicy": _spec("DeleteGroupPolicy", _GROUP_NAMED),
    "PutRolePolicy": _spec("PutRolePolicy", _ROLE_NAMED, tags=True),
    "GetRolePolicy": _spec("GetRolePolicy", _ROLE_NAMED, read=True, tags=True),
    "ListRolePolicies": _spec("ListRolePolicies", _ROLE_NAMED, read=True, tags=True),
    "DeleteRolePolicy": _spec("DeleteRolePolicy", _ROLE_NAMED, tags=True),
    # attachments
    "AttachUserPolicy": _spec("AttachUserPolicy", _USER_NAMED, tags=True, keys=_POLICY_ARN),
    "DetachUserPolicy": _spec("DetachUserPolicy", _USER_NAMED, tags=True, keys=_POLICY_ARN),
    "ListAttachedUserPolicies": _spec("ListAttachedUserPolicies", _USER_NAMED, read=True, tags=True),
    "AttachGroupPolicy": _spec("AttachGroupPolicy", _GROUP_NAMED, keys=_POLICY_ARN),
    "DetachGroupPolicy": _spec("DetachGroupPolicy", _GROUP_NAMED, keys=_POLICY_ARN),
    "ListAttachedGroupPolicies": _spec("ListAttachedGroupPolicies", _GROUP_NAMED, read=True),
    "AttachRolePolicy": _spec("AttachRolePolicy", _ROLE_NAMED, tags=True, keys=_POLICY_ARN),
    "DetachRolePolicy": _spec("DetachRolePolicy", _ROLE_NAMED, tags=True, keys=_POLICY_ARN),
    "ListAttachedRolePolicies": _spec("ListAttachedRolePolicies", _ROLE_NAMED, read=True, tags=True),
    # access keys
    "CreateAccessKey": _spec("CreateAccessKey", _USER_NAMED, tags=True),
    "ListAccessKeys": _spec("ListAccessKeys", _USER_NAMED, read=True, tags=True),
    "UpdateAccessKey": _spec("UpdateAccessKey", _USER_NAMED, tags=True),
    "DeleteAccessKey": _spec("DeleteAccessKey", _USER_NAMED, tags=True),
    "GetAccessKeyLastUsed": _spec("GetAccessKeyLastUsed", "arn:aws:iam::{account}:user/*", read=True),
    # simulation and reports
    "SimulatePrincipalPolicy": _spec("SimulatePrincipalPolicy", "{PolicySourceArn}", read=True),
    "SimulateCustomPolicy": _spec("SimulateCustomPolicy", "*", read=True),
    "GetAccountAuthorizationDetails": _spec("GetAccountAuthorizationDetails", "*", read=True),
    # Generate writes no resource, only the report it keeps (CloudTrail: Unconfirmed whether readOnly).
    "GenerateCredentialReport": _spec("GenerateCredentialReport", "*", read=True),
    "GetCredentialReport": _spec("GetCredentialReport", "*", read=True),
}


_KIND_OF_TEMPLATE = {_USER_NAMED: "user", _GROUP_NAMED: "group", _ROLE_NAMED: "role", _POLICY: "policy"}

# operation -> the kind of existing entity its resource is ("user" | "group" | "role" | "policy")
EXISTING_ENTITY: dict[str, str] = {
    op: _KIND_OF_TEMPLATE[spec.resources[0]]
    for op, spec in ACTIONS.items()
    if spec.resources[0] in _KIND_OF_TEMPLATE
}
