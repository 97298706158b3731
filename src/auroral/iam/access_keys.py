"""Access keys of IAM users (and of the root, when the root calls without ``UserName``).

The secret is returned once, by CreateAccessKey; the store only ever holds it sealed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import IamBase, limit_exceeded, no_such_entity, page
from auroral.iam.model import AccessKey, new_id, new_secret

MAX_KEYS = 2


class AccessKeyOperations(IamBase):
    def _owner(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        """The user the call is about: ``UserName``, else the calling user ("" for the root)."""
        name = params.get("UserName")
        if name:
            return self._user(name).name
        principal = ctx.principal
        if principal.is_root:
            return ""
        if principal.kind != "user":
            raise AwsError("ValidationError", "Must specify userName when calling with non-User credentials")
        return self._user(principal.name).name

    def _keys_of(self, owner: str) -> list[AccessKey]:
        if owner == "":
            return list(self.directory.root_keys.values())
        lowered = owner.lower()
        return [k for k in self.directory.access_keys.values() if k.user.lower() == lowered]

    def _key(self, owner: str, key_id: str) -> AccessKey:
        for key in self._keys_of(owner):
            if key.key_id == key_id:
                return key
        raise no_such_entity(f"The Access Key with id {key_id} cannot be found.")

    def CreateAccessKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(ctx, params)
        if len(self._keys_of(owner)) >= MAX_KEYS:
            raise limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}")
        key = AccessKey(new_id("AKIA"), owner, new_secret(), "Active", ctx.time)
        self.directory.save_access_key(key, root=owner == "")
        out: dict[str, Any] = {
            "AccessKeyId": key.key_id,
            "Status": key.status,
            "SecretAccessKey": key.secret,
            "CreateDate": key.created,
        }
        if owner:
            out["UserName"] = owner
        # The audit trail must never see the secret.
        ctx.response_elements = {
            "accessKey": {"accessKeyId": key.key_id, "status": key.status, "userName": owner}
        }
        return {"AccessKey": out}

    def ListAccessKeys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(ctx, params)
        keys = sorted(self._keys_of(owner), key=lambda k: k.key_id)
        chunk, extra = page(keys, lambda k: k.key_id, params)
        rows = []
        for k in chunk:
            row: dict[str, Any] = {"AccessKeyId": k.key_id, "Status": k.status, "CreateDate": k.created}
            if owner:
                row["UserName"] = owner
            rows.append(row)
        return {"AccessKeyMetadata": rows, **extra}

    def UpdateAccessKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        status = params["Status"]
        if status not in ("Active", "Inactive"):
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Active, Inactive]",
            )
        owner = self._owner(ctx, params)
        key = self._key(owner, params["AccessKeyId"])
        self.directory.save_access_key(replace(key, status=status), root=owner == "")
        return {}

    def DeleteAccessKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(ctx, params)
        key = self._key(owner, params["AccessKeyId"])
        self.directory.delete_access_key(key, root=owner == "")
        return {}

    def GetAccessKeyLastUsed(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = params["AccessKeyId"]
        key = self.directory.access_keys.get(key_id) or self.directory.root_keys.get(key_id)
        if key is None:
            raise no_such_entity(f"The Access Key with id {key_id} cannot be found.")
        last: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
        if key.last_used is not None:
            last = {
                "LastUsedDate": key.last_used,
                "ServiceName": key.last_service or "N/A",
                "Region": key.last_region or "N/A",
            }
        out: dict[str, Any] = {"AccessKeyLastUsed": last}
        if key.user:
            out["UserName"] = key.user
        return out
