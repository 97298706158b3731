"""Key lifecycle: CreateKey, DescribeKey, ListKeys, Enable/Disable, deletion scheduling, key policies,
descriptions and tags.

States (KMS developer guide, "Key states"): Enabled ⇄ Disabled; either → PendingDeletion
(ScheduleKeyDeletion, 7 to 30 days, default 30); CancelKeyDeletion → Disabled; after the deletion date the
key is gone (NotFoundException). Operations on a key pending deletion fail with KMSInvalidStateException.
"""

from __future__ import annotations

from typing import Any

from auroral.api.context import RequestContext
from auroral.kms import errors
from auroral.kms.base import KmsBase, tag_map
from auroral.kms.model import SYMMETRIC, when
from auroral.kms.policy import compile_key_policy, default_key_policy

_DAY = 86400.0


def _page(items: list[Any], params: dict[str, Any], marker_of: Any, default_limit: int = 100) -> tuple[list[Any], dict[str, Any]]:
    """KMS paging: Limit and Marker in, Truncated and NextMarker out. The marker is the last item's key."""
    limit = int(params.get("Limit") or default_limit)
    marker = params.get("Marker")
    if marker:
        keys = [marker_of(i) for i in items]
        if marker not in keys:
            raise errors.kms_error("InvalidMarkerException", "Invalid marker")
        items = items[keys.index(marker) + 1:]
    page = items[:limit]
    if len(items) > limit:
        return page, {"Truncated": True, "NextMarker": marker_of(page[-1])}
    return page, {"Truncated": False}


class KeyOperations(KmsBase):
    def CreateKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or SYMMETRIC
        if spec != SYMMETRIC:
            raise errors.kms_error("UnsupportedOperationException",
                                   f"auroral supports only {SYMMETRIC} keys, not {spec}.")
        usage = params.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if usage != "ENCRYPT_DECRYPT":
            raise errors.validation(f"KeyUsage {usage} is not compatible with KeySpec {SYMMETRIC}")
        origin = params.get("Origin") or "AWS_KMS"
        if origin != "AWS_KMS" or params.get("MultiRegion") or params.get("CustomKeyStoreId"):
            raise errors.kms_error("UnsupportedOperationException",
                                   "auroral supports only single-Region keys with Origin AWS_KMS.")
        tags = tag_map(params.get("Tags"))
        policy = params.get("Policy") or default_key_policy(ctx.account)
        compile_key_policy(policy)
        self.keyring.purge_expired()
        store = self.keyring.records.store
        # The key is written in a transaction so a failing lockout check leaves nothing behind.
        with store.transaction():
            rec = self.keyring.create_key(ctx.account, policy=policy, description=params.get("Description") or "",
                                          tags=tags)
            if not params.get("BypassPolicyLockoutSafetyCheck") and self.keyring.decide(
                ctx, "kms:PutKeyPolicy", rec.ref, policy=None
            ):
                raise errors.lockout()
        ctx.record_resource("AWS::KMS::Key", rec.arn)
        return {"KeyMetadata": rec.metadata()}

    def DescribeKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"KeyMetadata": self._rec(ctx, params.get("KeyId")).metadata()}

    def ListKeys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        entries = [{"KeyId": r.key_id, "KeyArn": r.arn} for r in self.keyring.records.keys(ctx.account)]
        page, more = _page(entries, params, lambda e: e["KeyId"])
        return {"Keys": page, **more}

    def EnableKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        rec.state = "Enabled"
        self.keyring.records.put_key(rec)
        return {}

    def DisableKey(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        rec.state = "Disabled"
        self.keyring.records.put_key(rec)
        return {}

    def ScheduleKeyDeletion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        days = params.get("PendingWindowInDays")
        window = 30 if days is None else int(days)
        if not 7 <= window <= 30:
            raise errors.validation(f"PendingWindowInDays should be between 7 and 30, but it is {window}")
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        rec.state = "PendingDeletion"
        rec.pending_window = window
        rec.deletion_date = self.keyring.clock() + window * _DAY
        self.keyring.records.put_key(rec)
        self.keyring.purge_expired()
        return {"KeyId": rec.arn, "DeletionDate": when(rec.deletion_date), "KeyState": rec.state,
                "PendingWindowInDays": window}

    def CancelKeyDeletion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._rec(ctx, params.get("KeyId"))
        if rec.state != "PendingDeletion":
            # Unconfirmed wording; the code is the one AWS documents for this case.
            raise errors.kms_error("KMSInvalidStateException", f"{rec.arn} is not pending deletion.")
        rec.state = "Disabled"
        rec.deletion_date = None
        rec.pending_window = None
        self.keyring.records.put_key(rec)
        return {"KeyId": rec.arn}

    def UpdateKeyDescription(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        rec.description = str(params.get("Description") or "")
        self.keyring.records.put_key(rec)
        return {}

    # --- key policies -----------------------------------------------------------------------

    @staticmethod
    def _policy_name(params: dict[str, Any]) -> None:
        name = params.get("PolicyName") or "default"
        if name != "default":
            raise errors.kms_error("NotFoundException", "No such policy exists")

    def GetKeyPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._policy_name(params)
        rec = self._rec(ctx, params.get("KeyId"))
        return {"Policy": rec.policy, "PolicyName": "default"}

    def PutKeyPolicy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._policy_name(params)
        rec = self._rec(ctx, params.get("KeyId"))
        policy = str(params.get("Policy") or "")
        compile_key_policy(policy)
        if not params.get("BypassPolicyLockoutSafetyCheck") and self.keyring.decide(
            ctx, "kms:PutKeyPolicy", rec.ref, policy=policy
        ):
            raise errors.lockout()
        rec.policy = policy
        self.keyring.records.put_key(rec)
        return {}

    def ListKeyPolicies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._rec(ctx, params.get("KeyId"))
        return {"PolicyNames": ["default"], "Truncated": False}

    # --- tags -------------------------------------------------------------------------------

    def TagResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        rec.tags.update(tag_map(params.get("Tags")))
        self.keyring.records.put_key(rec)
        return {}

    def UntagResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._not_pending(self._rec(ctx, params.get("KeyId")))
        for key in params.get("TagKeys") or []:
            rec.tags.pop(str(key), None)
        self.keyring.records.put_key(rec)
        return {}

    def ListResourceTags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self._rec(ctx, params.get("KeyId"))
        tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(rec.tags.items())]
        page, more = _page(tags, params, lambda t: t["TagKey"], default_limit=50)
        return {"Tags": page, **more}
