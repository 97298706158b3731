"""Persistence of keys, aliases and grants (through the store, never its SQL).

A key whose deletion date has passed no longer exists: readers treat it as gone at once, and
``purge_expired`` removes it — its sealed material, aliases and grants — from the store (KMS deletes
the key material at the end of the waiting period; deletion cannot be undone).

Key documents are cached as stored (every key write goes through this class); ``KeyRecord.from_doc``
copies what it takes, so the cache is never changed by a caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from auroral.kms.model import ALIAS_KIND, GRANT_KIND, KEY_KIND, AliasRecord, GrantRecord, KeyRecord
from auroral.store import Store


class Records:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._keys: dict[tuple[str, str], dict[str, Any] | None] = {}

    # --- keys -------------------------------------------------------------------------------

    def _expired(self, rec: KeyRecord) -> bool:
        return rec.state == "PendingDeletion" and rec.deletion_date is not None and rec.deletion_date <= self.clock()

    def key(self, account: str, key_id: str) -> KeyRecord | None:
        cached = (account, key_id)
        if cached not in self._keys:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[cached] = self.store.get(KEY_KIND, account, key_id)
        doc = self._keys[cached]
        if doc is None:
            return None
        rec = KeyRecord.from_doc(doc)
        return None if self._expired(rec) else rec

    def keys(self, account: str) -> list[KeyRecord]:
        recs = [KeyRecord.from_doc(doc) for _, _, doc in self.store.list(KEY_KIND, account)]
        return [r for r in recs if not self._expired(r)]

    def put_key(self, rec: KeyRecord) -> None:
        doc = rec.to_doc()
        self.store.put(KEY_KIND, rec.account, rec.key_id, doc)
        self._keys[(rec.account, rec.key_id)] = doc

    def purge_expired(self) -> int:
        """Delete every key past its deletion date, with its aliases and grants. Returns how many."""
        purged = 0
        for account, key_id, doc in self.store.list(KEY_KIND):
            rec = KeyRecord.from_doc(doc)
            if not self._expired(rec):
                continue
            with self.store.transaction():
                for alias in self.aliases(account):
                    if alias.target == key_id:
                        self.store.delete(ALIAS_KIND, account, alias.name)
                for grant in self.grants(account, key_id):
                    self.store.delete(GRANT_KIND, account, grant.grant_id)
                self.store.delete(KEY_KIND, account, key_id)
            self._keys.pop((account, key_id), None)
            purged += 1
        return purged

    # --- aliases ----------------------------------------------------------------------------

    def alias(self, account: str, name: str) -> AliasRecord | None:
        doc = self.store.get(ALIAS_KIND, account, name)
        if doc is None:
            return None
        alias = AliasRecord.from_doc(doc)
        return alias if self.key(account, alias.target) is not None else None

    def aliases(self, account: str) -> list[AliasRecord]:
        live = {r.key_id for r in self.keys(account)}
        return [a for a in (AliasRecord.from_doc(d) for _, _, d in self.store.list(ALIAS_KIND, account))
                if a.target in live]

    def put_alias(self, alias: AliasRecord) -> None:
        self.store.put(ALIAS_KIND, alias.account, alias.name, alias.to_doc())

    def delete_alias(self, account: str, name: str) -> None:
        self.store.delete(ALIAS_KIND, account, name)

    # --- grants -----------------------------------------------------------------------------

    def grant(self, account: str, grant_id: str) -> GrantRecord | None:
        doc = self.store.get(GRANT_KIND, account, grant_id)
        return None if doc is None else GrantRecord.from_doc(doc)

    def grants(self, account: str, key_id: str | None = None) -> list[GrantRecord]:
        out = [GrantRecord.from_doc(d) for _, _, d in self.store.list(GRANT_KIND, account)]
        return [g for g in out if key_id is None or g.key_id == key_id]

    def put_grant(self, grant: GrantRecord) -> None:
        self.store.put(GRANT_KIND, grant.account, grant.grant_id, grant.to_doc())

    def delete_grant(self, account: str, grant_id: str) -> None:
        self.store.delete(GRANT_KIND, account, grant_id)
