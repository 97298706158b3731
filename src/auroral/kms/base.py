"""What every KMS handler family shares: the keyring, key lookups with AWS's state errors, and the
pipeline hooks that give authorization the real key ARN and KMS's condition keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.kms import errors
from auroral.kms.keyring import Keyring, context_keys
from auroral.kms.model import KeyRecord, KeyRef, alias_arn, parse_alias_arn

_ALIAS_DOC = "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
_KEY_OPS = frozenset({
    "DescribeKey", "EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "UpdateKeyDescription",
    "GetKeyPolicy", "PutKeyPolicy", "ListKeyPolicies", "TagResource", "UntagResource", "ListResourceTags",
    "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "CreateGrant", "ListGrants", "RevokeGrant",
})  # fmt: skip
_CONTEXT_PARAM = {
    "Encrypt": "EncryptionContext",
    "Decrypt": "EncryptionContext",
    "GenerateDataKey": "EncryptionContext",
    "GenerateDataKeyWithoutPlaintext": "EncryptionContext",
    "ReEncrypt": "SourceEncryptionContext",
}


def tag_map(tags: Any) -> dict[str, str]:
    """KMS tags ``[{TagKey, TagValue}]`` as a dict; TagException for reserved keys."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag.get("TagKey", ""))
        if key.lower().startswith("aws:"):
            raise errors.kms_error("TagException", "Tags beginning with aws: are reserved")
        out[key] = str(tag.get("TagValue", ""))
    return out


def check_alias_name(name: str) -> None:
    if not name.startswith("alias/") or len(name) <= len("alias/"):
        raise errors.validation(f'Alias must start with the prefix "alias/". Please see {_ALIAS_DOC}')


def reserved_alias(name: str) -> AwsError:
    # AWS answers NotAuthorizedException, without a message, for the alias/aws/ prefix (not in the model;
    # moto's KMS, whose behaviour was checked against AWS, sends the same).
    return AwsError("NotAuthorizedException", "", 400)


def _bool(value: Any) -> str:
    return "true" if value else "false"


class KmsBase:
    service = "kms"

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @property
    def region(self) -> str:
        return self.keyring.region

    # --- lookups ----------------------------------------------------------------------------

    def _ref(self, ctx: RequestContext, key_id: Any) -> KeyRef:
        return self.keyring.resolve(ctx.account, str(key_id) if key_id else None)

    def _rec(self, ctx: RequestContext, key_id: Any) -> KeyRecord:
        return self.keyring.record(self._ref(ctx, key_id))

    def _not_pending(self, rec: KeyRecord) -> KeyRecord:
        if rec.state == "PendingDeletion":
            raise errors.pending_deletion(rec.arn)
        return rec

    def _alias_name(self, ctx: RequestContext, text: str) -> str:
        parsed = parse_alias_arn(text)
        name = parsed[2] if parsed else text
        check_alias_name(name)
        return name

    def _own_alias_name(self, ctx: RequestContext, text: str) -> str:
        """AliasName of CreateAlias/UpdateAlias/DeleteAlias: ``alias/<name>``, or this account's and
        region's alias ARN; an alias ARN of another account or region is refused, not cut down to
        its name (the alias operations act only on the caller's own aliases)."""
        parsed = parse_alias_arn(text)
        if parsed is not None and (parsed[0] != self.region or parsed[1] != ctx.account):
            check_alias_name(text)  # raises: not "alias/..."
        return self._alias_name(ctx, text)

    def _target(self, ctx: RequestContext, text: Any) -> KeyRef:
        """TargetKeyId of CreateAlias/UpdateAlias: a key id or key ARN, never an alias."""
        value = str(text or "")
        if value.startswith("alias/") or parse_alias_arn(value) is not None:
            raise errors.validation("Aliases must refer to keys. Not aliases")
        return self._ref(ctx, value)

    # --- pipeline hooks ---------------------------------------------------------------------

    def resolve_resource(self, ctx: RequestContext, kind: str, value: Any, params: Mapping[str, Any]) -> list[str]:
        """Key ARNs for a KeyId given as key id, key ARN, alias name or alias ARN (``Keyring.resolve``, as
        the handlers) or for a ciphertext blob; an alias ARN for an alias name; for the alias operations
        also the key the alias points to now and the key it will point to."""
        if kind == "key":
            return [self._ref(ctx, value).arn]
        if kind == "blob":
            return [self.keyring.key_of_blob(ctx.account, bytes(value or b"")).arn]
        if kind == "target":
            return [self._target(ctx, value).arn]
        name = self._own_alias_name(ctx, str(value or ""))
        if name.startswith("alias/aws/"):
            raise reserved_alias(name)
        arn = alias_arn(self.region, ctx.account, name)
        if kind == "alias":
            return [arn]
        if kind == "alias-target":
            current = self.keyring.records.alias(ctx.account, name)
            if current is None:
                raise errors.alias_not_found(arn)
            return [self.keyring.record(self._ref(ctx, current.target)).arn]
        raise KeyError(kind)

    def authz_keys(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        if operation == "CreateKey":
            keys["kms:KeySpec"] = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
            keys["kms:KeyUsage"] = params.get("KeyUsage") or "ENCRYPT_DECRYPT"
            keys["kms:KeyOrigin"] = params.get("Origin") or "AWS_KMS"
            keys["kms:MultiRegion"] = _bool(params.get("MultiRegion"))
        if operation in ("CreateKey", "PutKeyPolicy"):
            keys["kms:BypassPolicyLockoutSafetyCheck"] = _bool(params.get("BypassPolicyLockoutSafetyCheck"))
        if operation in ("CreateKey", "TagResource"):
            tags = tag_map(params.get("Tags"))
            keys.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
            keys["aws:TagKeys"] = list(tags)
        if operation == "UntagResource":
            keys["aws:TagKeys"] = [str(k) for k in params.get("TagKeys") or []]
        if operation == "ScheduleKeyDeletion":
            keys["kms:ScheduleKeyDeletionPendingWindowInDays"] = str(params.get("PendingWindowInDays") or 30)
        param = _CONTEXT_PARAM.get(operation)
        if param is not None:
            keys.update(context_keys(params.get(param)))
            keys["kms:EncryptionAlgorithm"] = params.get("EncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
        if operation == "CreateGrant":
            keys["kms:GrantOperations"] = list(params.get("Operations") or [])
            keys["kms:GranteePrincipal"] = params.get("GranteePrincipal")
            if params.get("RetiringPrincipal"):
                keys["kms:RetiringPrincipal"] = params["RetiringPrincipal"]
            constraints: Mapping[str, Any] = params.get("Constraints") or {}
            if constraints:
                keys["kms:GrantConstraintType"] = list(constraints)
            keys["kms:GrantIsForAWSResource"] = "false"
        key_id = str(params.get("KeyId") or "")
        if key_id.startswith("alias/") or parse_alias_arn(key_id) is not None:
            keys["kms:RequestAlias"] = self._alias_name(ctx, key_id)
        if operation in _KEY_OPS:
            rec = self._rec(ctx, params.get("KeyId"))
            keys.update({f"aws:ResourceTag/{k}": v for k, v in rec.tags.items()})
        return keys
