"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

Names start with ``alias/``; ``alias/aws/`` is reserved for AWS managed keys, whose aliases KMS lists
even before the key exists (without TargetKeyId: "predefined aliases that AWS has created but has not
yet associated with a KMS key", ListAliases API reference).
"""

from __future__ import annotations

from typing import Any

from auroral.api.context import RequestContext
from auroral.kms import errors
from auroral.kms.base import KmsBase
from auroral.kms.keys import _page
from auroral.kms.model import AliasRecord, alias_arn
from auroral.kms.policy import MANAGED_KEYS


class AliasOperations(KmsBase):
    def CreateAlias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._own_alias_name(ctx, str(params.get("AliasName") or ""))
        target = self._not_pending(self.keyring.record(self._target(ctx, params.get("TargetKeyId"))))
        with self.keyring.records.store.transaction():
            if self.keyring.records.alias(ctx.account, name) is not None:
                arn = alias_arn(self.region, ctx.account, name)
                raise errors.kms_error("AlreadyExistsException", f"An alias with the name {arn} already exists")
            now = self.keyring.clock()
            self.keyring.records.put_alias(AliasRecord(ctx.account, name, target.key_id, now, now))
        return {}

    def UpdateAlias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._own_alias_name(ctx, str(params.get("AliasName") or ""))
        alias = self.keyring.records.alias(ctx.account, name)
        if alias is None:
            raise errors.alias_not_found(alias_arn(self.region, ctx.account, name))
        target = self._not_pending(self.keyring.record(self._target(ctx, params.get("TargetKeyId"))))
        alias.target = target.key_id
        alias.updated = self.keyring.clock()
        self.keyring.records.put_alias(alias)
        return {}

    def DeleteAlias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._own_alias_name(ctx, str(params.get("AliasName") or ""))
        if self.keyring.records.alias(ctx.account, name) is None:
            raise errors.alias_not_found(alias_arn(self.region, ctx.account, name))
        self.keyring.records.delete_alias(ctx.account, name)
        return {}

    def ListAliases(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        aliases = self.keyring.records.aliases(ctx.account)
        entries = [a.entry(self.region) for a in aliases]
        if params.get("KeyId"):
            key_id = self._ref(ctx, params["KeyId"]).key_id
            entries = [e for e in entries if e["TargetKeyId"] == key_id]
        else:
            created = {a.name for a in aliases}
            entries += [{"AliasName": n, "AliasArn": alias_arn(self.region, ctx.account, n)}
                        for n in MANAGED_KEYS if n not in created]
        entries.sort(key=lambda e: str(e["AliasName"]))
        page, more = _page(entries, params, lambda e: e["AliasName"])
        return {"Aliases": page, **more}
