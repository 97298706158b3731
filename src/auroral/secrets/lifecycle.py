"""Secret lifecycle: CreateSecret, UpdateSecret, DescribeSecret, ListSecrets, DeleteSecret (recovery
window 7-30 days, default 30, or ForceDeleteWithoutRecovery), RestoreSecret, TagResource, UntagResource.

A secret scheduled for deletion keeps its name and versions until its deletion date, refuses reads and
changes ("marked for deletion"), and can be restored; after the date it is purged (lazily, and by the
rotation scheduler's sweep). Secrets another service owns refuse value, key and deletion changes.
"""

from __future__ import annotations

import uuid
from typing import Any

from auroral.api.context import RequestContext
from auroral.secrets import errors, views
from auroral.secrets.base import SecretsBase, page, tags_of, value_of
from auroral.secrets.model import CURRENT, Secret

_DAY = 86400.0


class LifecycleOperations(SecretsBase):
    def CreateSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["Name"])
        value = value_of(params)
        tags = tags_of(params)
        token = str(params.get("ClientRequestToken") or uuid.uuid4())
        arn = self._planned_arn(ctx, name)
        with self.records.lock:
            existing = self.records.get(ctx.account, name)
            if existing is not None:
                if existing.deleted is not None:
                    raise errors.invalid_request("You can't create this secret because a secret with this name "
                                                 "is already scheduled for deletion.")
                same = existing.versions.get(token)
                if value is not None and same is not None and self.records.open(existing, same) == value[0]:
                    ctx.record_resource("AWS::SecretsManager::Secret", existing.arn)
                    return {"ARN": existing.arn, "Name": existing.name, "VersionId": token}
                raise errors.exists(name)
            key, customer = self._resolve_key(ctx, params.get("KmsKeyId"))
            if customer:
                self._kms_check(ctx, "kms:GenerateDataKey", key, arn, token)
                self._kms_check(ctx, "kms:Decrypt", key, arn, token)
            now = self.records.clock()
            secret = Secret(account=ctx.account, name=name, arn=arn, kms_key_arn=key.arn, customer_key=customer,
                            created=now, last_changed=now, description=str(params.get("Description") or ""),
                            tags=[[k, v] for k, v in tags.items()])
            if value is not None:
                self.records.new_version(secret, token, value[0], value[1], [CURRENT])
            self.records.save(secret)
        ctx.record_resource("AWS::SecretsManager::Secret", arn)
        out: dict[str, Any] = {"ARN": arn, "Name": name}
        if value is not None:
            out["VersionId"] = token
        return out

    def UpdateSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        value = value_of(params)
        kms_key_id = params.get("KmsKeyId")
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            if value is not None or kms_key_id:
                self._not_owned(secret)
            if kms_key_id:
                key, customer = self._resolve_key(ctx, kms_key_id)
                if key.arn != secret.kms_key_arn:
                    if secret.customer_key:
                        for v in secret.versions.values():
                            self._kms_check(ctx, "kms:Decrypt", self.records.key_of(secret), secret.arn, v.version_id)
                    if customer:
                        self._kms_check(ctx, "kms:GenerateDataKey", key, secret.arn, "*")
                    self.records.reseal(secret, key)
                secret.customer_key = customer
            if params.get("Description") is not None:
                secret.description = str(params["Description"])
            out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
            if value is not None:
                token = str(params.get("ClientRequestToken") or uuid.uuid4())
                if token in secret.versions:
                    raise errors.version_exists()
                if secret.customer_key:
                    self._kms_check(ctx, "kms:GenerateDataKey", self.records.key_of(secret), secret.arn, token)
                self.records.new_version(secret, token, value[0], value[1], [CURRENT])
                out["VersionId"] = token
            secret.last_changed = self.records.clock()
            self.records.save(secret)
        return out

    def DescribeSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return views.describe(self._find(ctx, params.get("SecretId")), self.region)

    def ListSecrets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        secrets = self._filtered(ctx, params)
        chunk, token = page(secrets, params)
        out: dict[str, Any] = {"SecretList": [views.list_entry(s, self.region) for s in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def DeleteSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        window = params.get("RecoveryWindowInDays")
        force = bool(params.get("ForceDeleteWithoutRecovery"))
        if force and window is not None:
            raise errors.invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
        days = 30 if window is None else int(window)
        if not 7 <= days <= 30:
            raise errors.invalid_parameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
        with self.records.lock:
            secret = self._find(ctx, params.get("SecretId"))
            self._not_owned(secret)
            now = self.records.clock()
            if force:
                self.records.remove(secret)
                return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": now}
            if secret.deleted is not None:
                raise errors.marked_for_deletion()
            secret.deleted = now
            secret.deletion_date = now + days * _DAY
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": secret.deletion_date}

    def RestoreSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self.records.lock:
            secret = self._find(ctx, params.get("SecretId"))
            secret.deleted = None
            secret.deletion_date = None
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name}

    def TagResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = tags_of(params)
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            secret.set_tags(tags)
            self.records.save(secret)
        return {}

    def UntagResource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        keys = [str(k) for k in params.get("TagKeys") or []]
        if any(k.lower().startswith("aws:") for k in keys):
            raise errors.invalid_parameter("Invalid tag key: keys with the prefix aws: are reserved for AWS use.")
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            secret.remove_tags(keys)
            self.records.save(secret)
        return {}
