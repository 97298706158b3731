"""Encryption at rest: the KMS key of an encrypted cluster (``StorageEncrypted`` / ``KmsKeyId``) and the data
keys that seal what auroral keeps outside a running server (``rds/envelope.py``).

As on AWS ("AWS KMS key management", Aurora user guide): the caller who creates an encrypted cluster needs
``kms:CreateGrant`` and ``kms:DescribeKey`` on the key (checked with ``kms:ViaService`` =
``rds.<region>.amazonaws.com``, so the AWS managed key ``aws/rds``'s policy lets the account's principals use
it through RDS); RDS then uses the key through a grant to its service-linked role
(``AWSServiceRoleForRDS``), made at create and retired with the cluster (or snapshot). A key that is disabled,
pending deletion, deleted, or whose grant was revoked is *not accessible*: the cluster stops serving
(``inaccessible-encryption-credentials``) and restores fail with ``KMSKeyNotAccessibleFault``, until the key
is usable again.

Unencrypted clusters' artifacts are sealed too, under a data key wrapped by the installation's master key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auroral.api.context import RequestContext
from auroral.crypto import Sealer
from auroral.errors import AccessDenied, AwsError
from auroral.kms.keyring import Keyring
from auroral.kms.model import GrantRecord, KeyRef
from auroral.rds.base import rds_error

DEFAULT_KEY_ALIAS = "alias/aws/rds"
VIA_SERVICE = "rds"
# What RDS's grant lets its service-linked role do with the key (the operations AWS's RDS grants list).
GRANT_OPERATIONS = ["Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                    "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey", "RetireGrant"]
WRAP_KMS = "kms"
WRAP_LOCAL = "local"


def slr_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"


def key_not_accessible(key: str) -> AwsError:
    # RDS's message for a key that is missing, disabled or not usable by the caller.
    return rds_error("KMSKeyNotAccessibleFault",
                     f"The specified KMS key [{key}] does not exist, is not enabled or you do not have "
                     "permissions to access it.")


@dataclass(frozen=True)
class WrappedKey:
    """A data key as stored: wrapped by KMS (``blob``, base64) or by the master key (sealed text)."""

    wrapping: str
    blob: str

    def to_doc(self) -> dict[str, str]:
        return {"wrapping": self.wrapping, "blob": self.blob}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> WrappedKey:
        return cls(str(doc["wrapping"]), str(doc["blob"]))


class StorageKeys:
    def __init__(self, keyring: Keyring, sealer: Sealer) -> None:
        self.keyring = keyring
        self.sealer = sealer

    # --- at create: the caller's key, checked, and RDS's grant ------------------------------------

    def key_for_create(self, ctx: RequestContext, key_id: str | None) -> KeyRef:
        """The key a create (or restore, or copy) names (default ``aws/rds``), usable and usable by the
        caller through RDS; KMSKeyNotAccessibleFault otherwise."""
        shown = key_id or DEFAULT_KEY_ALIAS
        try:
            key = self.keyring.resolve(ctx.account, key_id or None, default_alias=DEFAULT_KEY_ALIAS)
            rec = self.keyring.record(key)
        except AwsError:
            raise key_not_accessible(shown) from None
        if rec.state != "Enabled":
            raise key_not_accessible(shown)
        for action in ("kms:DescribeKey", "kms:CreateGrant"):
            try:
                self.keyring.check(ctx, action, key, via_service=VIA_SERVICE)
            except AccessDenied:
                raise key_not_accessible(shown) from None
        return key

    def grant(self, key: KeyRef, *, name: str, account: str | None = None) -> str:
        """RDS's grant on ``key`` for the service-linked role of ``account`` (default: the key's; another
        account's for a restore of a snapshot shared with it), idempotent by name; its id. The grant is the
        key's (kept in the key owner's account), as KMS keeps grants."""
        grantee = slr_arn(account or key.account)
        for g in self.keyring.records.grants(key.account, key.key_id):
            if g.name == name and g.grantee == grantee:
                return g.grant_id
        grant = GrantRecord(
            account=key.account, grant_id=hashlib.sha256(os.urandom(32)).hexdigest(), key_id=key.key_id,
            key_arn=key.arn, grantee=grantee, operations=list(GRANT_OPERATIONS),
            created=self.keyring.clock(), token=base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("="),
            name=name, retiring=grantee,
        )
        self.keyring.records.put_grant(grant)
        return grant.grant_id

    def retire(self, key_arn: str | None, grant_id: str | None) -> None:
        if not key_arn or not grant_id:
            return
        try:
            key = self.keyring.resolve(key_arn.split(":")[4], key_arn)
        except AwsError:
            return
        for g in self.keyring.records.grants(key.account, key.key_id):
            if g.grant_id == grant_id:
                self.keyring.records.delete_grant(g.account, g.grant_id)

    # --- RDS's own use of the key ---------------------------------------------------------------------

    def inaccessible(self, account: str, key_arn: str) -> str | None:
        """Why RDS cannot use the key now (None: it can): its state, or no grant left for RDS."""
        try:
            key = self.keyring.resolve(account, key_arn)
            rec = self.keyring.record(key)
        except AwsError:
            return f"the KMS key {key_arn} does not exist"
        if rec.state != "Enabled":
            return f"the KMS key {key_arn} is {rec.state}"
        if rec.manager == "AWS":
            # the AWS managed key's policy lets RDS use it for its own account only (kms:CallerAccount)
            return None if key.account == account else f"the KMS key {key_arn} is another account's aws/rds key"
        if not any(g.grantee == slr_arn(account) and "Decrypt" in g.operations
                   for g in self.keyring.records.grants(key.account, key.key_id)):
            return f"RDS's grant on the KMS key {key_arn} was revoked"
        return None

    def new_data_key(self, account: str, key_arn: str | None, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        """A fresh 256-bit data key: under ``key_arn`` through KMS, or under the master key (no key).
        RuntimeError with the reason when the KMS key cannot be used."""
        if key_arn is None:
            data_key = os.urandom(32)
            return data_key, WrappedKey(WRAP_LOCAL, self.sealer.seal(data_key, _aad(context)))
        reason = self.inaccessible(account, key_arn)
        if reason is not None:
            raise KeyUnusable(reason)
        key = self.keyring.resolve(account, key_arn)
        try:
            data_key, blob = self.keyring.generate_data_key(key, context)
        except AwsError as exc:
            raise KeyUnusable(exc.message) from None
        return data_key, WrappedKey(WRAP_KMS, base64.b64encode(blob).decode())

    def open_data_key(self, account: str, key_arn: str | None, wrapped: WrappedKey,
                      context: Mapping[str, str]) -> bytes:
        if wrapped.wrapping == WRAP_LOCAL:
            return self.sealer.open(wrapped.blob, _aad(context))
        if key_arn is not None:
            reason = self.inaccessible(account, key_arn)
            if reason is not None:
                raise KeyUnusable(reason)
        owner = key_arn.split(":")[4] if key_arn and key_arn.startswith("arn:") else account
        try:
            data_key, _ = self.keyring.decrypt(owner, base64.b64decode(wrapped.blob), context)
        except AwsError as exc:
            raise KeyUnusable(exc.message) from None
        return data_key


class KeyUnusable(Exception):
    """RDS cannot use the KMS key (disabled, pending deletion, deleted, grant revoked)."""


def _aad(context: Mapping[str, str]) -> bytes:
    return b"rds-data-key:" + json.dumps(dict(context), sort_keys=True).encode()
