"""Authorization table entries for KMS (Service Authorization Reference, "AWS Key Management Service").

Resources: ``key`` ``arn:aws:kms:<region>:<account>:key/<key id>`` and ``alias``
``arn:aws:kms:<region>:<account>:alias/<name>``. A KeyId parameter may name a key by id, key ARN,
alias name or alias ARN: it is a ``Ref`` that ``KmsService.resolve_resource`` turns into the real key
ARN (for Decrypt and ReEncrypt, the key of the ciphertext blob); an alias operation is authorized on
the alias ARN and on the key ARNs it points from and to. Key ARNs are then authorized by ``KeyPolicyAuthorizer`` (key
policy + IAM + grants), alias ARNs by IAM alone, as AWS does.

``RetireGrant`` is decided in the handler: the grant's retiring principal (or grantee, when the grant
allows RetireGrant) may retire it whatever the policies say (KMS developer guide, "Retiring and
revoking grants"); anyone else needs kms:RetireGrant on the key.

Condition keys that need a lookup or a default (kms:KeySpec, kms:EncryptionContext:*, kms:GrantOperations,
kms:RequestAlias, aws:RequestTag/* from ``[{TagKey, TagValue}]``) come from ``KmsService.authz_keys``.
"""

from auroral.api.actions import ActionSpec, Ref

_KEY = Ref("KeyId", "key")
_BLOB = Ref("CiphertextBlob", "blob")
_ALIAS = Ref("AliasName", "alias")
_ALIAS_TARGET = Ref("AliasName", "alias-target")
_TARGET = Ref("TargetKeyId", "target")


def _key(action: str, read_only: bool = False) -> ActionSpec:
    return ActionSpec(f"kms:{action}", (_KEY,), read_only=read_only)


ACTIONS: dict[str, ActionSpec] = {
    # Tags: "you must have kms:TagResource permission in an IAM policy" (CreateKey API reference)
    "CreateKey": ActionSpec("kms:CreateKey", ("*",), tag_on_create=("kms:TagResource", "Tags")),
    "DescribeKey": _key("DescribeKey", read_only=True),
    "ListKeys": ActionSpec("kms:ListKeys", ("*",), read_only=True),
    "EnableKey": _key("EnableKey"),
    "DisableKey": _key("DisableKey"),
    "ScheduleKeyDeletion": _key("ScheduleKeyDeletion"),
    "CancelKeyDeletion": _key("CancelKeyDeletion"),
    "UpdateKeyDescription": _key("UpdateKeyDescription"),
    "GetKeyPolicy": _key("GetKeyPolicy", read_only=True),
    "PutKeyPolicy": _key("PutKeyPolicy"),
    "ListKeyPolicies": _key("ListKeyPolicies", read_only=True),
    "TagResource": _key("TagResource"),
    "UntagResource": _key("UntagResource"),
    "ListResourceTags": _key("ListResourceTags", read_only=True),
    "CreateAlias": ActionSpec("kms:CreateAlias", (_ALIAS, _TARGET)),
    "UpdateAlias": ActionSpec("kms:UpdateAlias", (_ALIAS, _ALIAS_TARGET, _TARGET)),
    "DeleteAlias": ActionSpec("kms:DeleteAlias", (_ALIAS, _ALIAS_TARGET)),
    "ListAliases": ActionSpec("kms:ListAliases", ("*",), read_only=True),
    "Encrypt": _key("Encrypt"),
    "Decrypt": ActionSpec("kms:Decrypt", (_BLOB,)),
    "ReEncrypt": ActionSpec("kms:ReEncryptFrom", (_BLOB,)),
    "GenerateDataKey": _key("GenerateDataKey"),
    "GenerateDataKeyWithoutPlaintext": _key("GenerateDataKeyWithoutPlaintext"),
    "GenerateRandom": ActionSpec("kms:GenerateRandom", ("*",)),
    "CreateGrant": _key("CreateGrant"),
    "ListGrants": _key("ListGrants", read_only=True),
    "RevokeGrant": _key("RevokeGrant"),
    "RetireGrant": ActionSpec("kms:RetireGrant", (_KEY,), unauthorized=True),
}
