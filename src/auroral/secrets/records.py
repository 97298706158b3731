"""Secret documents in the store, found by name, ARN or partial ARN, and their versions' values.

All read-modify-write of a secret happens under ``lock`` (the API handlers, the Vault and the rotation
scheduler share one ``SecretRecords``), and each change is one ``Store.put`` of the whole document.
Secrets whose recovery window has ended are purged lazily on lookup and by the scheduler's sweep.
Documents are cached as the store holds them (every write goes through this class, which keeps
the cache in step); ``Secret.from_doc`` copies what it takes, so a cached document is never changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from auroral.kms.keyring import Keyring
from auroral.kms.model import KeyRef
from auroral.secrets import envelope
from auroral.secrets.model import DEFAULT_KEY_ALIAS, SECRET_KIND, Secret, Version, parse_arn
from auroral.store import Store


class SecretRecords:
    def __init__(self, store: Store, keyring: Keyring, region: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keyring = keyring
        self.region = region
        self.clock = clock
        self.lock = threading.RLock()
        self._docs: dict[tuple[str, str], dict[str, Any] | None] = {}

    # --- documents ----------------------------------------------------------------------

    def _doc(self, account: str, name: str) -> dict[str, Any] | None:
        key = (account, name)
        if key not in self._docs:
            if len(self._docs) > 10_000:
                self._docs.clear()
            self._docs[key] = self.store.get(SECRET_KIND, account, name)
        return self._docs[key]

    def get(self, account: str, name: str) -> Secret | None:
        doc = self._doc(account, name)
        if doc is None:
            return None
        secret = Secret.from_doc(doc)
        if secret.deletion_date is not None and secret.deletion_date <= self.clock():
            self.store.delete(SECRET_KIND, account, name)
            self._docs.pop((account, name), None)
            return None
        return secret

    def find(self, account: str, secret_id: str) -> Secret | None:
        """A secret by name, full ARN or partial ARN (the ARN without its random suffix)."""
        parsed = parse_arn(secret_id)
        if parsed is None:
            return self.get(account, secret_id)
        region, owner, tail = parsed
        if region != self.region or owner != account:
            return None
        if len(tail) > 7 and tail[-7] == "-":
            full = self.get(account, tail[:-7])
            if full is not None and full.arn == secret_id:
                return full
        partial = self.get(account, tail)
        return partial

    def by_arn(self, account: str, arn: str) -> Secret | None:
        secret = self.find(account, arn)
        return secret if secret is not None and secret.arn == arn else None

    def save(self, secret: Secret) -> None:
        doc = secret.to_doc()
        self.store.put(SECRET_KIND, secret.account, secret.name, doc)
        self._docs[(secret.account, secret.name)] = doc

    def remove(self, secret: Secret) -> None:
        self.store.delete(SECRET_KIND, secret.account, secret.name)
        self._docs.pop((secret.account, secret.name), None)

    def all(self, account: str | None = None) -> list[Secret]:
        now = self.clock()
        out: list[Secret] = []
        for _acct, _key, doc in self.store.list(SECRET_KIND, account):
            secret = Secret.from_doc(doc)
            if secret.deletion_date is None or secret.deletion_date > now:
                out.append(secret)
        return out

    def purge_expired(self) -> int:
        now = self.clock()
        gone = 0
        with self.lock:
            for acct, key, doc in self.store.list(SECRET_KIND):
                deadline = doc.get("deletion_date")
                if deadline is not None and deadline <= now:
                    self.store.delete(SECRET_KIND, acct, key)
                    self._docs.pop((acct, key), None)
                    gone += 1
        return gone

    # --- keys and values ----------------------------------------------------------------

    def resolve_key(self, account: str, kms_key_id: str | None) -> tuple[KeyRef, bool]:
        """The key a secret uses (default ``alias/aws/secretsmanager``) and whether it is a customer key."""
        ref = self.keyring.resolve(account, kms_key_id or None, default_alias=DEFAULT_KEY_ALIAS)
        return ref, self.keyring.record(ref).manager == "CUSTOMER"

    def key_of(self, secret: Secret) -> KeyRef:
        return self.keyring.resolve(secret.account, secret.kms_key_arn)

    def new_version(self, secret: Secret, version_id: str, value: bytes, binary: bool,
                    stages: list[str]) -> Version:
        """Seal ``value`` with the secret's key and add it as a version carrying ``stages``."""
        key = self.key_of(secret)
        data_key, ct = envelope.seal(self.keyring, key, secret.arn, version_id, value, binary)
        version = Version(version_id=version_id, stages=[], created=self.clock(), data_key=data_key,
                          ciphertext=ct, binary=binary, kms_key_arn=key.arn)
        secret.versions[version_id] = version
        for stage in stages:
            secret.attach(version_id, stage)
        secret.prune()
        return version

    def open(self, secret: Secret, version: Version) -> bytes:
        return envelope.open_(self.keyring, secret.account, secret.arn, version.version_id, version.data_key,
                              version.ciphertext, version.binary)

    def reseal(self, secret: Secret, key: KeyRef) -> None:
        """Re-encrypt every version under ``key`` (UpdateSecret KmsKeyId, MasterUserSecretKmsKeyId)."""
        for version in secret.versions.values():
            value = self.open(secret, version)
            version.data_key, version.ciphertext = envelope.seal(
                self.keyring, key, secret.arn, version.version_id, value, version.binary)
            version.kms_key_arn = key.arn
        secret.kms_key_arn = key.arn
