"""Grants: CreateGrant, ListGrants, RetireGrant, RevokeGrant.

A grant lets its grantee principal perform the listed operations on one key (subject to the encryption
context constraints); ``Keyring.check`` consults grants next to the key policy. A named grant is
idempotent: CreateGrant with the same Name on the same key returns the existing grant id.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from auroral.api.context import RequestContext
from auroral.kms import errors
from auroral.kms.base import KmsBase
from auroral.kms.keys import _page
from auroral.kms.model import GrantRecord

# Grant operations that make sense on a symmetric encryption key (CreateGrant API reference).
_SYMMETRIC_OPERATIONS = frozenset({
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
    "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
})  # fmt: skip


def _grant_id() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()


def _same_grant(a: GrantRecord, b: GrantRecord) -> bool:
    return (a.name, a.grantee, sorted(a.operations), a.retiring, a.constraints) == (
        b.name, b.grantee, sorted(b.operations), b.retiring, b.constraints)


def _token() -> str:
    return base64.urlsafe_b64encode(os.urandom(96)).decode().rstrip("=")


class GrantOperations(KmsBase):
    def CreateGrant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self.keyring.record(self._ref(ctx, params.get("KeyId")))
        if rec.state == "Disabled":
            raise errors.disabled(rec.arn)
        self._not_pending(rec)
        operations = [str(op) for op in params.get("Operations") or []]
        bad = [op for op in operations if op not in _SYMMETRIC_OPERATIONS]
        if bad or not operations:
            raise errors.validation(f"Grant operations {bad} are not valid for a key with KeySpec SYMMETRIC_DEFAULT.")
        name = params.get("Name")
        token = _token()
        with self.keyring.records.store.transaction():
            grant = GrantRecord(
                account=ctx.account, grant_id=_grant_id(), key_id=rec.key_id, key_arn=rec.arn,
                grantee=str(params["GranteePrincipal"]), operations=operations, created=self.keyring.clock(),
                token=token, name=str(name) if name else None,
                retiring=str(params["RetiringPrincipal"]) if params.get("RetiringPrincipal") else None,
                constraints={k: dict(v) for k, v in (params.get("Constraints") or {}).items()} or None,
            )
            if name:
                # A retry "with identical parameters" returns the grant it made (CreateGrant API reference,
                # Name); the same name with other parameters is another grant, never someone else's.
                for existing in self.keyring.records.grants(ctx.account, rec.key_id):
                    if _same_grant(existing, grant):
                        return {"GrantId": existing.grant_id, "GrantToken": existing.token}
            self.keyring.records.put_grant(grant)
        return {"GrantId": grant.grant_id, "GrantToken": token}

    def ListGrants(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self.keyring.record(self._ref(ctx, params.get("KeyId")))
        grants = sorted(self.keyring.records.grants(ctx.account, rec.key_id), key=lambda g: (g.created, g.grant_id))
        if params.get("GrantId"):
            grants = [g for g in grants if g.grant_id == params["GrantId"]]
        if params.get("GranteePrincipal"):
            grants = [g for g in grants if g.grantee == params["GranteePrincipal"]]
        page, more = _page([g.entry() for g in grants], params, lambda e: e["GrantId"], default_limit=50)
        return {"Grants": page, **more}

    def RevokeGrant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rec = self.keyring.record(self._ref(ctx, params.get("KeyId")))
        grant = self.keyring.records.grant(ctx.account, str(params.get("GrantId") or ""))
        if grant is None or grant.key_id != rec.key_id:
            raise errors.kms_error("InvalidGrantIdException", "")
        self.keyring.records.delete_grant(ctx.account, grant.grant_id)
        return {}

    def RetireGrant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        grant: GrantRecord | None = None
        if params.get("GrantToken"):
            token = str(params["GrantToken"])
            grant = next((g for g in self.keyring.records.grants(ctx.account) if g.token == token), None)
            if grant is None:
                raise errors.kms_error("InvalidGrantTokenException", "The grant token is not valid.")
        elif params.get("KeyId") and params.get("GrantId"):
            rec = self.keyring.record(self._ref(ctx, params["KeyId"]))
            grant = self.keyring.records.grant(ctx.account, str(params["GrantId"]))
            if grant is None or grant.key_id != rec.key_id:
                raise errors.kms_error("InvalidGrantIdException", "")
        else:
            raise errors.validation("Grant token OR (grant ID, key ID) must be specified")
        caller = ctx.principal.arn
        may_retire = caller == grant.retiring or (caller == grant.grantee and "RetireGrant" in grant.operations)
        if not may_retire:
            self.keyring.check(ctx, "kms:RetireGrant", self.keyring.record(self._ref(ctx, grant.key_id)).ref)
        self.keyring.records.delete_grant(grant.account, grant.grant_id)
        ctx.record_resource("AWS::KMS::Key", grant.key_arn)
        return {}
