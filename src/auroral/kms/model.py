"""KMS resources as typed records, and the identifiers that name them.

A key is addressed four ways (key id, key ARN, alias name, alias ARN); ``KeyRef`` is the resolved
form every internal call takes. Records convert to and from the plain dicts the store keeps; the
key material is only ever held sealed in the record (``material``), opened by the keyring on use.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from auroral.regions import partition_of

KeyState = Literal["Enabled", "Disabled", "PendingDeletion"]
KeyManager = Literal["CUSTOMER", "AWS"]

KEY_KIND = "kms-key"
ALIAS_KIND = "kms-alias"
GRANT_KIND = "kms-grant"

SYMMETRIC = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KEY_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:kms:([a-z0-9-]+):(\d{12}):key/(.+)")
_ALIAS_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:kms:([a-z0-9-]+):(\d{12}):(alias/.+)")


@dataclass(frozen=True)
class KeyRef:
    """A key that exists (at the time it was resolved)."""

    account: str
    key_id: str
    arn: str


def key_arn(region: str, account: str, key_id: str) -> str:
    return f"arn:{partition_of(region)}:kms:{region}:{account}:key/{key_id}"


def alias_arn(region: str, account: str, name: str) -> str:
    return f"arn:{partition_of(region)}:kms:{region}:{account}:{name}"


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


def parse_key_arn(text: str) -> tuple[str, str, str] | None:
    """(region, account, key id) of a key ARN."""
    m = _KEY_ARN.fullmatch(text)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def parse_alias_arn(text: str) -> tuple[str, str, str] | None:
    """(region, account, alias name) of an alias ARN."""
    m = _ALIAS_ARN.fullmatch(text)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclass
class KeyRecord:
    account: str
    key_id: str
    arn: str
    created: float
    material: str  # the 256-bit key material, sealed under the master key (aad: the key ARN)
    policy: str
    description: str = ""
    state: KeyState = "Enabled"
    manager: KeyManager = "CUSTOMER"
    deletion_date: float | None = None
    pending_window: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> KeyRef:
        return KeyRef(self.account, self.key_id, self.arn)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyRecord:
        return cls(**{**doc, "tags": dict(doc.get("tags") or {})})  # copied: documents may be cached

    def metadata(self) -> dict[str, Any]:
        """``KeyMetadata`` as DescribeKey returns it."""
        meta: dict[str, Any] = {
            "AWSAccountId": self.account,
            "KeyId": self.key_id,
            "Arn": self.arn,
            "CreationDate": when(self.created),
            "Enabled": self.state == "Enabled",
            "Description": self.description,
            "KeyUsage": ENCRYPT_DECRYPT,
            "KeyState": self.state,
            "Origin": "AWS_KMS",
            "KeyManager": self.manager,
            "CustomerMasterKeySpec": SYMMETRIC,
            "KeySpec": SYMMETRIC,
            "EncryptionAlgorithms": [SYMMETRIC],
            "MultiRegion": False,
        }
        if self.state == "PendingDeletion":
            meta["DeletionDate"] = when(self.deletion_date)
            meta["PendingDeletionWindowInDays"] = self.pending_window
        return meta


@dataclass
class AliasRecord:
    account: str
    name: str
    target: str  # key id
    created: float
    updated: float

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AliasRecord:
        return cls(**doc)

    def entry(self, region: str) -> dict[str, Any]:
        return {
            "AliasName": self.name,
            "AliasArn": alias_arn(region, self.account, self.name),
            "TargetKeyId": self.target,
            "CreationDate": when(self.created),
            "LastUpdatedDate": when(self.updated),
        }


@dataclass
class GrantRecord:
    account: str
    grant_id: str
    key_id: str
    key_arn: str
    grantee: str
    operations: list[str]
    created: float
    token: str
    name: str | None = None
    retiring: str | None = None
    constraints: dict[str, dict[str, str]] | None = None

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> GrantRecord:
        return cls(**doc)

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "KeyId": self.key_arn,
            "GrantId": self.grant_id,
            "CreationDate": when(self.created),
            "GranteePrincipal": self.grantee,
            "IssuingAccount": f"arn:aws:iam::{self.account}:root",
            "Operations": list(self.operations),
        }
        if self.name:
            out["Name"] = self.name
        if self.retiring:
            out["RetiringPrincipal"] = self.retiring
        if self.constraints:
            out["Constraints"] = self.constraints
        return out

    def permits(self, operation: str, context: dict[str, str],
                child: tuple[list[str], Mapping[str, Any] | None] | None = None) -> bool:
        """Whether this grant allows ``operation`` (e.g. "Decrypt") with this encryption context.

        CreateGrant is allowed only for the grant ``child`` (its operations and constraints) the request
        creates, and only one this grant covers (``covers``); without one (a call made on the caller's
        behalf) not at all. DescribeKey and RetireGrant ignore the constraints (CreateGrant API
        reference, Constraints)."""
        if operation not in self.operations:
            return False
        if operation == "CreateGrant":
            return child is not None and self.covers(*child)
        if operation in ("DescribeKey", "RetireGrant"):
            return True
        c = self.constraints or {}
        equals = c.get("EncryptionContextEquals")
        if equals is not None and dict(equals) != dict(context):
            return False
        subset = c.get("EncryptionContextSubset")
        return subset is None or all(context.get(k) == v for k, v in subset.items())

    def covers(self, operations: list[str], constraints: Mapping[str, Any] | None) -> bool:
        """Whether a grantee holding CreateGrant through this grant may create a grant of ``operations``
        with ``constraints``: "Principals who get permission to create grants from a grant are limited
        in the grants that they can create" (KMS developer guide, "Granting CreateGrant permission"): its
        operations among this grant's, and this grant's encryption context constraint at least as strict
        in it (the same EncryptionContextEquals; for EncryptionContextSubset, a constraint that includes
        every pair of it)."""
        if not operations or not set(operations) <= set(self.operations):
            return False
        parent = self.constraints or {}
        given = constraints or {}
        equals, subset = parent.get("EncryptionContextEquals"), parent.get("EncryptionContextSubset")
        if equals is not None:
            child_equals = given.get("EncryptionContextEquals")
            return isinstance(child_equals, Mapping) and dict(child_equals) == dict(equals)
        if subset is not None:
            return any(isinstance(m, Mapping) and all(m.get(k) == v for k, v in subset.items())
                       for m in (given.get("EncryptionContextEquals"), given.get("EncryptionContextSubset")))
        return True
