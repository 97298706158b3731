"""Managed policies and their versions (customer-managed; AWS-managed ones are read-only)."""

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
    no_such_entity,
    page,
)
from auroral.iam.model import (
    ManagedPolicy,
    PolicyVersion,
    new_id,
    tags_from_params,
    validate_name,
    validate_path,
)
from auroral.iam.users import MAX_TAGS, merge_tags, tags_page

MAX_VERSIONS = 5
POLICY_QUOTA = ("PolicySize", 6144)


def _policy_key(policy: ManagedPolicy) -> str:
    return f"{policy.name.lower()}\x00{policy.arn}"


class PolicyOperations(IamBase):
    def _version(self, policy: ManagedPolicy, version_id: str) -> PolicyVersion:
        version = policy.versions.get(version_id)
        if version is None:
            raise no_such_entity(
                f"Policy {policy.arn} version {version_id} does not exist or is not attachable."
            )
        return version

    def CreatePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["PolicyName"]
        path = params.get("Path") or "/"
        validate_name(name, "policyName", 128)
        validate_path(path)
        document = params["PolicyDocument"]
        self.validate_document(document, "identity", POLICY_QUOTA, managed=True)
        lowered = name.lower()
        if any(p.name.lower() == lowered for p in self.directory.policies.values()):
            raise already_exists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        tags = tags_from_params(params.get("Tags"))
        if len(tags) > MAX_TAGS:
            raise limit_exceeded(f"Cannot exceed quota for TagsPerPolicy: {MAX_TAGS}")
        policy = ManagedPolicy(
            name=name,
            path=path,
            policy_id=new_id("ANPA"),
            arn=f"arn:aws:iam::{self.account}:policy{path}{name}",
            created=ctx.time,
            updated=ctx.time,
            default_version="v1",
            versions={"v1": PolicyVersion("v1", document, ctx.time)},
            description=params.get("Description"),
            tags=tags,
        )
        self.directory.save_policy(policy)
        ctx.record_resource("AWS::IAM::Policy", policy.arn)
        return {"Policy": self.policy_view(policy)}

    def GetPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Policy": self.policy_view(self._policy(params["PolicyArn"]))}

    def ListPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        scope = params.get("Scope") or "All"
        if scope not in ("All", "AWS", "Local"):
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: "
                "Member must satisfy enum value set: [All, AWS, Local]",
            )
        prefix = params.get("PathPrefix") or "/"
        usage = params.get("PolicyUsageFilter")
        candidates: list[ManagedPolicy] = []
        if scope in ("All", "AWS"):
            candidates += self.directory.aws_policies.values()
        if scope in ("All", "Local"):
            candidates += self.directory.policies.values()
        selected = []
        for p in candidates:
            if not p.path.startswith(prefix):
                continue
            if params.get("OnlyAttached") or usage:
                users, groups, roles = self.directory.entities_attached_to(p.arn)
                attached = bool(users or groups or roles)
                bounded = self.directory.boundary_usage(p.arn) > 0
                if usage == "PermissionsPolicy" and not attached:
                    continue
                if usage == "PermissionsBoundary" and not bounded:
                    continue
                if params.get("OnlyAttached") and not (attached or bounded):
                    continue
            selected.append(p)
        selected.sort(key=_policy_key)
        chunk, extra = page(selected, _policy_key, params)
        # ListPolicies does not return tags (AWS documents: use GetPolicy).
        return {"Policies": [self.policy_view(p, tags=False) for p in chunk], **extra}

    def DeletePolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        users, groups, roles = self.directory.entities_attached_to(policy.arn)
        if users or groups or roles or self.directory.boundary_usage(policy.arn):
            raise delete_conflict("Cannot delete a policy attached to entities.")
        if len(policy.versions) > 1:
            raise delete_conflict(
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's versions. The default version is deleted with the policy."
            )
        self.directory.delete_policy(policy)
        ctx.record_resource("AWS::IAM::Policy", policy.arn)
        return {}

    # --- versions ------------------------------------------------------------------------------

    def CreatePolicyVersion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        document = params["PolicyDocument"]
        self.validate_document(document, "identity", POLICY_QUOTA, managed=True)
        if len(policy.versions) >= MAX_VERSIONS:
            raise limit_exceeded(
                "A managed policy can have up to 5 versions. Before you create a new version, you must "
                "delete an existing version."
            )
        version_id = f"v{policy.next_version}"
        version = PolicyVersion(version_id, document, ctx.time)
        updated = replace(
            policy,
            versions={**policy.versions, version_id: version},
            next_version=policy.next_version + 1,
            default_version=version_id if params.get("SetAsDefault") else policy.default_version,
            updated=ctx.time if params.get("SetAsDefault") else policy.updated,
        )
        self.directory.save_policy(updated)
        return {"PolicyVersion": self.version_view(updated, version, document=False)}

    def GetPolicyVersion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._policy(params["PolicyArn"])
        version = self._version(policy, params["VersionId"])
        return {"PolicyVersion": self.version_view(policy, version)}

    def ListPolicyVersions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._policy(params["PolicyArn"])
        # Newest first, as AWS lists them; the page key orders by version number descending.
        versions = sorted(policy.versions.values(), key=lambda v: -int(v.version_id[1:]))

        def key(v: PolicyVersion) -> str:
            return f"{1_000_000 - int(v.version_id[1:]):07d}"

        chunk, extra = page(versions, key, params)
        return {"Versions": [self.version_view(policy, v, document=False) for v in chunk], **extra}

    def DeletePolicyVersion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        version = self._version(policy, params["VersionId"])
        if version.version_id == policy.default_version:
            raise delete_conflict("Cannot delete the default version of this policy.")
        versions = {k: v for k, v in policy.versions.items() if k != version.version_id}
        self.directory.save_policy(replace(policy, versions=versions))
        return {}

    def SetDefaultPolicyVersion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        version = self._version(policy, params["VersionId"])
        self.directory.save_policy(replace(policy, default_version=version.version_id, updated=ctx.time))
        return {}

    # --- tags ----------------------------------------------------------------------------------

    def TagPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        tags = merge_tags(policy.tags, tags_from_params(params["Tags"]), "TagsPerPolicy")
        self.directory.save_policy(replace(policy, tags=tags))
        return {}

    def UntagPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._customer_policy(params["PolicyArn"])
        removed = set(params["TagKeys"])
        self.directory.save_policy(
            replace(policy, tags={k: v for k, v in policy.tags.items() if k not in removed})
        )
        return {}

    def ListPolicyTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return tags_page(self._policy(params["PolicyArn"]).tags, params)
