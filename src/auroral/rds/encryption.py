"""Encrypted clusters in the control plane: ``StorageEncrypted`` / ``KmsKeyId`` at create, and the key's state
watched while the cluster lives (``rds/storage_keys.py`` has the KMS side).

A cluster whose key RDS cannot use any more (disabled, pending deletion, RDS's grant revoked) stops serving:
its endpoints close, its servers stop, and it and its instances show ``inaccessible-encryption-credentials``.
Once the key is usable again, the servers start and the endpoints open (``available``). The watch runs every
``key_check_seconds`` (``AURORAL_KMS_CHECK_SECONDS``, default 5) and at recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import invalid_parameter_combination, invalid_parameter_value
from auroral.rds.base import RdsBase
from auroral.rds.model import Cluster
from auroral.rds.runtime import RuntimeFailure
from auroral.rds.storage_keys import StorageKeys

log = logging.getLogger("auroral.rds")

INACCESSIBLE = "inaccessible-encryption-credentials"


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return value is True or (isinstance(value, str) and value.lower() == "true")


class EncryptionOperations(RdsBase):
    storage_keys: StorageKeys | None = None
    key_check_seconds: float = float(os.environ.get("AURORAL_KMS_CHECK_SECONDS") or 5)
    _key_watch: asyncio.Task[None] | None = None

    def attach_storage_keys(self, keys: StorageKeys) -> None:
        self.storage_keys = keys

    def _storage_key(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[bool, str | None]:
        """Whether a new cluster is encrypted, and its key's ARN (checked: usable, and the caller may use
        it through RDS). Nothing is created here (the grant comes once the cluster is saved)."""
        asked = _flag(params.get("StorageEncrypted"))
        key_id = str(params["KmsKeyId"]) if params.get("KmsKeyId") else None
        if asked is False and key_id:
            # Unconfirmed wording; the code is RDS's for contradicting parameters.
            raise invalid_parameter_combination("KmsKeyId can only be specified when StorageEncrypted is true.")
        if not asked and not key_id:
            return False, None
        if self.storage_keys is None:
            raise invalid_parameter_value("StorageEncrypted is not supported by this auroral installation.")
        return True, self.storage_keys.key_for_create(ctx, key_id).arn

    def _grant_storage_key(self, cluster: Cluster) -> None:
        if cluster.kms_key_id and self.storage_keys is not None:
            key = self.storage_keys.keyring.resolve(cluster.account, cluster.kms_key_id)
            cluster.kms_grant_id = self.storage_keys.grant(key, name=f"rds-{cluster.resource_id}",
                                                           account=cluster.account)

    def _retire_storage_grant(self, cluster: Cluster) -> None:
        if self.storage_keys is not None:
            self.storage_keys.retire(cluster.kms_key_id, cluster.kms_grant_id)

    def key_problem(self, cluster: Cluster) -> str | None:
        """Why RDS cannot use the cluster's key now (None: it can, or the cluster is unencrypted)."""
        if not cluster.kms_key_id or self.storage_keys is None:
            return None
        if cluster.kms_grant_id is None:
            # a cluster of an auroral that took KmsKeyId without using it (no grant, maybe not even a key ARN):
            # its data never depended on the key, so the key's state does not stop it
            return None
        return self.storage_keys.inaccessible(cluster.account, cluster.kms_key_id)

    # --- the watch --------------------------------------------------------------------------------

    def start_key_watch(self) -> None:
        if self._key_watch is None or self._key_watch.done():
            self._key_watch = asyncio.get_running_loop().create_task(self._watch_keys(), name="rds key watch")

    async def stop_key_watch(self) -> None:
        task, self._key_watch = self._key_watch, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_keys(self) -> None:
        while True:
            await asyncio.sleep(self.key_check_seconds)
            try:
                self.check_keys()
            except Exception:
                log.exception("checking the clusters' KMS keys failed")

    def check_keys(self) -> None:
        """Move every encrypted cluster whose key changed accessibility (a background task does the work)."""
        for cluster in self._clusters(None):
            if not cluster.kms_key_id:
                continue
            problem = self.key_problem(cluster)
            if problem is not None and cluster.status == "available":
                self._spawn_lock_out(cluster, problem)
            elif problem is None and cluster.status == INACCESSIBLE:
                self._spawn_unlock(cluster)

    def _spawn_lock_out(self, cluster: Cluster, reason: str) -> None:
        rid = cluster.resource_id
        log.warning("cluster %s: %s: %s", cluster.identifier, INACCESSIBLE, reason)
        cluster.transition(INACCESSIBLE, reason)
        self._save_cluster(cluster)
        for member in self._members(cluster):
            if member.status == "available":
                member.transition(INACCESSIBLE, reason)
                self._save_instance(member)

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            if current is None or current.status != INACCESSIBLE:
                return
            try:
                for member in self._members(current):
                    await self.runtime.close_endpoint(current, member)
                await self.runtime.stop_cluster(current)
            except RuntimeFailure as exc:
                log.warning("cluster %s: stopping failed: %s", current.identifier, exc.reason)

        self._spawn(rid, "key-inaccessible", work)

    def _spawn_unlock(self, cluster: Cluster) -> None:
        """The key is usable again: start the servers and open the endpoints (``clusters._spawn_start``)."""
        log.info("cluster %s: its KMS key is accessible again", cluster.identifier)
        self._spawn_start(cluster.resource_id, INACCESSIBLE)

    def _spawn_start(self, rid: str, expected: str) -> None:  # clusters.py
        raise NotImplementedError
