"""The keyring: KMS's one internal interface. The HTTP handlers use it, and so do services that call KMS
on a caller's behalf (Secrets Manager, RDS), passing ``via_service`` so key policies that require
``kms:ViaService`` (like AWS managed keys' policies) see the call as AWS does.

    resolve(account, key_id, default_alias=...)    -> KeyRef      id, key ARN, alias name or alias ARN
    describe(account, key_id)                      -> KeyMetadata
    check(ctx, action, key, via_service=..., encryption_context=...)    key policy + IAM + grants
    generate_data_key(key, context)                -> (plaintext, ciphertext blob)
    encrypt(key, plaintext, context)               -> ciphertext blob
    decrypt(account, blob, context)                -> (plaintext, KeyRef)

Cryptography: each key holds 256 random bits, sealed under the installation master key with the key
ARN as associated data. A ciphertext blob is ``0x01 | key uuid (16) | nonce (12) | AES-256-GCM(ct+tag)``;
the associated data is the blob header plus the canonical (sorted, compact JSON) encryption context,
so Decrypt with another context, or a tampered header, fails with InvalidCiphertextException.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auroral.api.context import RequestContext
from auroral.crypto import Sealer
from auroral.errors import AccessDenied
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.policy import AuthzRequest, Policy, access_denied_message
from auroral.iam.policy.principals import Reach
from auroral.kms import errors
from auroral.kms.model import (
    AliasRecord,
    KeyRecord,
    KeyRef,
    alias_arn,
    is_uuid,
    key_arn,
    parse_alias_arn,
    parse_key_arn,
)
from auroral.kms.policy import MANAGED_KEYS, compile_key_policy, evaluate_key_access, managed_key_policy
from auroral.kms.records import Records
from auroral.store import Store

_EC_KEY = "kms:EncryptionContext:"
_RESOURCE_TAG = "aws:resourcetag/"
_BLOB_VERSION = b"\x01"
_HEADER = 1 + 16
_NONCE = 12
_TAG = 16


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def context_keys(context: Mapping[str, str] | None) -> dict[str, Any]:
    """``kms:EncryptionContext:<k>`` and ``kms:EncryptionContextKeys`` condition keys."""
    ctx = dict(context or {})
    keys: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in ctx.items()}
    keys["kms:EncryptionContextKeys"] = list(ctx)
    return keys


class Keyring:
    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        region: str,
        iam: IamAuthorizer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = Records(store, clock)
        self.region = region
        self.clock = clock
        self._sealer = sealer
        self._iam = iam
        self._lock = threading.RLock()
        self._policies: dict[str, Policy] = {}

    # --- keys -------------------------------------------------------------------------------

    def create_key(self, account: str, *, policy: str, description: str = "", tags: Mapping[str, str] | None = None,
                   manager: str = "CUSTOMER") -> KeyRecord:
        key_id = str(uuid.uuid4())
        arn = key_arn(self.region, account, key_id)
        material = os.urandom(32)
        rec = KeyRecord(
            account=account, key_id=key_id, arn=arn, created=self.clock(),
            material=self._sealer.seal(material, self._material_aad(arn)),
            policy=policy, description=description, tags=dict(tags or {}),
            manager="AWS" if manager == "AWS" else "CUSTOMER",
        )
        self.records.put_key(rec)
        return rec

    def record(self, key: KeyRef) -> KeyRecord:
        """The key's current record; NotFoundException if it was deleted since it was resolved."""
        rec = self.records.key(key.account, key.key_id)
        if rec is None:
            raise errors.key_not_found(key.arn)
        return rec

    def resolve(self, account: str, key_id: str | None, *, default_alias: str | None = None) -> KeyRef:
        """Find a key by id, key ARN, alias name or alias ARN. ``default_alias`` applies when ``key_id`` is
        empty. A predefined AWS alias (``alias/aws/secretsmanager``, ``alias/aws/rds``) creates its AWS
        managed key on first reference, as KMS does ("DescribeKey" API reference)."""
        text = key_id or default_alias
        if not text:
            raise errors.validation("KeyId is required.")
        if text.startswith("alias/"):
            return self._by_alias(account, text, alias_arn(self.region, account, text))
        parsed_alias = parse_alias_arn(text)
        if parsed_alias is not None:
            region, owner, name = parsed_alias
            if region != self.region:
                raise errors.alias_not_found(text)
            return self._by_alias(owner, name, text)
        parsed_key = parse_key_arn(text)
        if parsed_key is not None:
            region, owner, kid = parsed_key
            rec = self.records.key(owner, kid) if region == self.region else None
            if rec is None:
                raise errors.key_not_found(text)
            return rec.ref
        if not is_uuid(text):
            raise errors.invalid_key_id(text)
        rec = self.records.key(account, text)
        if rec is None:
            raise errors.key_not_found(key_arn(self.region, account, text))
        return rec.ref

    def _by_alias(self, account: str, name: str, arn: str) -> KeyRef:
        alias = self.records.alias(account, name)
        if alias is None and name in MANAGED_KEYS:
            return self._managed_key(account, name)
        if alias is None:
            raise errors.alias_not_found(arn)
        rec = self.records.key(account, alias.target)
        if rec is None:
            raise errors.alias_not_found(arn)
        return rec.ref

    def _managed_key(self, account: str, name: str) -> KeyRef:
        service, description = MANAGED_KEYS[name]
        with self._lock, self.records.store.transaction():
            alias = self.records.alias(account, name)
            if alias is not None:
                return self.record(KeyRef(account, alias.target, key_arn(self.region, account, alias.target))).ref
            rec = self.create_key(account, policy=managed_key_policy(service, account, self.region),
                                  description=description, manager="AWS")
            now = self.clock()
            self.records.put_alias(AliasRecord(account, name, rec.key_id, now, now))
            return rec.ref

    def describe(self, account: str, key_id: str) -> dict[str, Any]:
        return self.record(self.resolve(account, key_id)).metadata()

    def purge_expired(self) -> int:
        return self.records.purge_expired()

    # --- authorization ----------------------------------------------------------------------

    def key_policy(self, rec: KeyRecord) -> Policy:
        policy = self._policies.get(rec.policy)
        if policy is None:
            if len(self._policies) > 1024:
                self._policies.clear()
            policy = compile_key_policy(rec.policy)
            self._policies[rec.policy] = policy
        return policy

    def check(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRef,
        *,
        via_service: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        keys: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise AccessDenied (AWS's message) unless ``ctx.principal`` may perform ``action`` on ``key``
        under its key policy, IAM policies and grants (see ``kms.policy``). ``via_service`` ("secretsmanager")
        marks a call a service makes on the caller's behalf: ``kms:ViaService`` becomes
        ``<service>.<region>.amazonaws.com``."""
        result = self.decide(ctx, action, key, policy=None, via_service=via_service,
                             encryption_context=encryption_context, keys=keys)
        if result is not None:
            raise AccessDenied(result)

    def decide(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRef,
        *,
        policy: str | None,
        via_service: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        keys: Mapping[str, Any] | None = None,
    ) -> str | None:
        """None if allowed, else the AccessDenied message. ``policy`` evaluates a candidate key policy
        instead of the key's own (the PutKeyPolicy lockout safety check)."""
        if self._iam is None:
            raise RuntimeError("this keyring has no authorizer")
        rec = self.record(key)
        principal = ctx.principal
        # aws:ResourceTag/* are this key's, whoever asks (Decrypt names the key only through its
        # ciphertext, an alias operation decides on two keys, Secrets Manager calls on the caller's behalf)
        extra: dict[str, Any] = {k: v for k, v in (keys or {}).items() if not k.lower().startswith(_RESOURCE_TAG)}
        extra.update({f"aws:ResourceTag/{k}": v for k, v in rec.tags.items()})
        # ABAC by alias: the aliases that point to this key now
        extra["kms:ResourceAliases"] = sorted(a.name for a in self.records.aliases(rec.account)
                                              if a.target == rec.key_id)
        extra["kms:CallerAccount"] = principal.account
        if via_service:
            extra["kms:ViaService"] = f"{via_service}.{self.region}.amazonaws.com"
            extra["aws:ViaAWSService"] = "true"
        if encryption_context is not None:
            extra.update(context_keys(encryption_context))
        context = self._iam.request_context(ctx, extra)
        identity, boundary, session = self._iam.directory.policies_for(principal)
        operation = action.split(":", 1)[-1]
        if encryption_context is None:
            # Through the API the request's context arrives as its condition keys: grant constraints
            # are matched against the same context.
            ec = {k[len(_EC_KEY):]: str(v) for k, v in (keys or {}).items() if k.startswith(_EC_KEY)}
        else:
            ec = {str(k): str(v) for k, v in encryption_context.items()}
        child: tuple[list[str], Mapping[str, Any] | None] | None = None
        if operation == "CreateGrant" and ctx.service == "kms" and ctx.operation == "CreateGrant":
            child = ([str(op) for op in ctx.params.get("Operations") or []], ctx.params.get("Constraints"))
        grant: Reach | None = None
        for g in self.records.grants(rec.account, rec.key_id):
            reach = self._grantee_reach(g.grantee, principal.arn)
            if reach is not None and g.permits(operation, ec, child):
                grant = reach
                if reach is Reach.DIRECT:
                    break
        compiled = compile_key_policy(policy) if policy is not None else self.key_policy(rec)
        result = evaluate_key_access(
            AuthzRequest(action, rec.arn, context, principal.arn, principal.account),
            compiled, identity, boundary=boundary, session=session, is_root=principal.is_root,
            grant=grant,
        )
        return None if result.allowed else access_denied_message(principal.arn, action, rec.arn, result)

    @staticmethod
    def _grantee_reach(grantee: str, principal_arn: str) -> Reach | None:
        """A grant to the caller's own ARN reaches it directly; one to the role of a role session reaches
        the session the way a key policy naming the role does (limited by boundary and session policy)."""
        if grantee == principal_arn:
            return Reach.DIRECT
        parts = principal_arn.split(":", 5)
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            role = parts[5].split("/")[1]
            if grantee.startswith(f"arn:aws:iam::{parts[4]}:role/") and grantee.rsplit("/", 1)[-1] == role:
                return Reach.LIMITED
        return None

    # --- cryptography -----------------------------------------------------------------------

    @staticmethod
    def _material_aad(arn: str) -> bytes:
        return f"kms:key-material:{arn}".encode()

    def _usable(self, key: KeyRef) -> KeyRecord:
        rec = self.record(key)
        if rec.state == "Disabled":
            raise errors.disabled(rec.arn)
        if rec.state == "PendingDeletion":
            raise errors.pending_deletion(rec.arn)
        return rec

    def _aead(self, rec: KeyRecord) -> AESGCM:
        return AESGCM(self._sealer.open(rec.material, self._material_aad(rec.arn)))

    def encrypt(self, key: KeyRef, plaintext: bytes, context: Mapping[str, str] | None) -> bytes:
        rec = self._usable(key)
        header = _BLOB_VERSION + uuid.UUID(rec.key_id).bytes
        nonce = os.urandom(_NONCE)
        return header + nonce + self._aead(rec).encrypt(nonce, plaintext, header + canonical_context(context))

    def generate_data_key(self, key: KeyRef, context: Mapping[str, str] | None, *,
                          number_of_bytes: int = 32) -> tuple[bytes, bytes]:
        self._usable(key)
        plaintext = os.urandom(number_of_bytes)
        return plaintext, self.encrypt(key, plaintext, context)

    def key_of_blob(self, account: str, blob: bytes) -> KeyRef:
        """The key a ciphertext blob names (InvalidCiphertextException if it is not one of ours)."""
        if len(blob) < _HEADER + _NONCE + _TAG or blob[:1] != _BLOB_VERSION:
            raise errors.invalid_ciphertext()
        key_id = str(uuid.UUID(bytes=bytes(blob[1:_HEADER])))
        rec = self.records.key(account, key_id)
        if rec is None:
            raise errors.ciphertext_key_unknown()
        return rec.ref

    def decrypt(self, account: str, blob: bytes, context: Mapping[str, str] | None) -> tuple[bytes, KeyRef]:
        key = self.key_of_blob(account, blob)
        rec = self._usable(key)
        header, nonce, body = blob[:_HEADER], blob[_HEADER:_HEADER + _NONCE], blob[_HEADER + _NONCE:]
        try:
            plaintext = self._aead(rec).decrypt(bytes(nonce), bytes(body), bytes(header) + canonical_context(context))
        except InvalidTag:
            raise errors.invalid_ciphertext() from None
        return plaintext, key
