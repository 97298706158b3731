"""Managed master passwords: RDS's side of ``ManageMasterUserPassword`` and the rotator of the
``rds!cluster-<uuid>`` secrets.

RDS never writes Secrets Manager's tables: it asks the Secrets Manager *vault* (a small internal
interface, :class:`SecretVault`) to create, stage, finish and delete, and Secrets Manager's
rotation orchestrator calls :meth:`ManagedPasswords.rotate` back with a token.

Rotation follows Secrets Manager's four steps, each recorded in the store (kind ``rds-rotation``,
keyed by secret ARN: token and step) *before* it acts, and each idempotent for one token:

    createSecret   stage a new password as AWSPENDING (version = token), unless already staged
    setSecret      ALTER ROLE <master> PASSWORD (only the password; sessions stay open)
    testSecret     a real login with the pending password
    finishSecret   AWSCURRENT -> the token's version; the old one becomes AWSPREVIOUS

Invariant: at every moment AWSCURRENT's or AWSPENDING's password opens the database. Before
setSecret the database has AWSCURRENT's; from setSecret to finishSecret it may have AWSPENDING's,
which is why AWSPENDING is only dropped once the database is known to run with AWSCURRENT's again.
After a crash the orchestrator calls ``rotate`` again with the same token and the steps redo.

``AURORAL_TEST_CRASH_AT=<point>`` (tests only) makes the process kill itself with SIGKILL at one of
:data:`CRASH_POINTS`, to prove the above.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import string
import time
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn, Protocol

from auroral.api.context import RequestContext
from auroral.rds.model import Cluster
from auroral.rds.runtime import ClusterRuntime, ManagedClusterHost, RuntimeFailure
from auroral.store import Store

log = logging.getLogger("auroral.rds.managed_password")

OWNING_SERVICE = "rds"
KIND_ROTATION = "rds-rotation"
ROTATION_DAYS = 7
CRASH_ENV = "AURORAL_TEST_CRASH_AT"
# Where a test may kill the process: "<step>:recorded" is after the journal entry of a step was
# written and before it acts, "<step>:done" right after it acted (finishSecret:done: before the
# journal is cleared).
CRASH_POINTS = (
    "createSecret:recorded", "createSecret:done",
    "setSecret:recorded", "setSecret:done",
    "testSecret:recorded", "testSecret:done",
    "finishSecret:recorded", "finishSecret:done",
)
_STEP_ORDER = ("createSecret", "setSecret", "testSecret", "finishSecret")

PASSWORD_LENGTH = 28
# RDS refuses / " @ and space; ' \ and ` are left out too so the password survives shells and
# connection strings unquoted (still RDS-valid: this is a subset).
_PUNCTUATION = "".join(c for c in string.punctuation if c not in "/\"@'\\`")
_ALPHABET = string.ascii_letters + string.digits + _PUNCTUATION


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password RDS accepts, with at least one lower, upper, digit and punctuation character."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _PUNCTUATION)
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice(_ALPHABET) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def crash_point(name: str) -> None:
    """Tests only: a real ``kill -9`` of this process at ``name`` when ``AURORAL_TEST_CRASH_AT`` says so."""
    if os.environ.get(CRASH_ENV) == name:
        log.warning("%s=%s: killing this process", CRASH_ENV, name)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


class RotationFailed(Exception):
    """A rotation step failed; ``reason`` is shown to people (logs, SecretStatus ``impaired``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- what RDS uses of Secrets Manager ------------------------------------------------------


class ManagedSecretInfo(Protocol):
    @property
    def arn(self) -> str: ...

    @property
    def kms_key_arn(self) -> str: ...


class RotationRunInfo(Protocol):
    @property
    def status(self) -> str: ...


class SecretVault(Protocol):
    """The part of ``auroral.secrets.vault.Vault`` RDS uses."""

    def create_managed_secret(
        self, ctx: RequestContext, *, name: str, owning_service: str, description: str,
        tags: Mapping[str, str], value: Mapping[str, Any], kms_key_id: str | None,
    ) -> ManagedSecretInfo: ...

    def delete_managed_secret(self, account: str, arn: str) -> None: ...

    def read(self, account: str, arn: str, stage: str = "AWSCURRENT") -> tuple[str, dict[str, Any]] | None: ...

    def versions(self, account: str, arn: str) -> dict[str, list[str]]: ...

    def put_pending(self, account: str, arn: str, version_id: str, value: Mapping[str, Any]) -> None: ...

    def finish(self, account: str, arn: str, version_id: str) -> None: ...

    def drop_pending(self, account: str, arn: str) -> None: ...

    def reencrypt(self, ctx: RequestContext, account: str, arn: str, kms_key_id: str | None) -> str: ...

    def set_rotation(self, account: str, arn: str, *, every_days: int | None = 7, schedule: str | None = None) -> None: ...

    def rotate_now(self, ctx_or_account: RequestContext | str, arn: str) -> str:
        """Record a rotation and run the owning service's rotator in the background; the token."""
        ...

    def rotation_status(self, account: str, arn: str) -> RotationRunInfo | None: ...


# --- the manager ---------------------------------------------------------------------------


class ManagedPasswords:
    """``MasterSecretManager`` for ``RdsService`` and ``Rotator`` for Secrets Manager."""

    def __init__(self, vault: SecretVault, store: Store, runtime: ClusterRuntime) -> None:
        self._vault = vault
        self._store = store
        self._runtime = runtime
        self._host: ManagedClusterHost | None = None

    def bind(self, host: ManagedClusterHost) -> None:
        self._host = host

    def _require_host(self) -> ManagedClusterHost:
        if self._host is None:
            raise RuntimeError("ManagedPasswords is not bound to an RDS service")
        return self._host

    # --- MasterSecretManager ---------------------------------------------------------------

    def create_master_secret(
        self, ctx: RequestContext, cluster_arn: str, username: str, kms_key_id: str | None
    ) -> tuple[dict[str, str], str]:
        password = generate_password()
        secret = self._vault.create_managed_secret(
            ctx,
            name=f"rds!cluster-{uuid.uuid4()}",
            owning_service=OWNING_SERVICE,
            description=f"Secret associated with primary RDS DB cluster: {cluster_arn}",
            tags={"aws:rds:primaryDBClusterArn": cluster_arn, "aws:secretsmanager:owningService": OWNING_SERVICE},
            value={"username": username, "password": password},
            kms_key_id=kms_key_id,
        )
        view = {"SecretArn": secret.arn, "SecretStatus": "creating", "KmsKeyId": secret.kms_key_arn}
        return view, password

    def password_applied(self, account: str, secret_arn: str) -> None:
        self._vault.set_rotation(account, secret_arn, every_days=ROTATION_DAYS)

    def delete_master_secret(self, account: str, secret_arn: str) -> None:
        self._store.delete(KIND_ROTATION, account, secret_arn)
        self._vault.delete_managed_secret(account, secret_arn)

    def reencrypt(self, ctx: RequestContext, secret_arn: str, kms_key_id: str) -> str:
        return self._vault.reencrypt(ctx, ctx.account, secret_arn, kms_key_id)

    def rotate_now(self, account: str, secret_arn: str) -> None:
        self._vault.rotate_now(account, secret_arn)

    def rotation_pending(self, account: str, secret_arn: str) -> bool:
        return self._vault.rotation_status(account, secret_arn) is not None

    def current_password(self, account: str, secret_arn: str) -> str | None:
        current = self._vault.read(account, secret_arn, "AWSCURRENT")
        return None if current is None else str(current[1].get("password") or "") or None

    def rotation_failed(self, owning_service: str, account: str, secret_arn: str, reason: str) -> None:
        """The orchestrator's ``on_rotation_failed`` listener: RDS-owned secrets become ``impaired``."""
        if owning_service == OWNING_SERVICE:
            self._require_host().set_secret_status(account, secret_arn, "impaired", reason)

    # --- Rotator ---------------------------------------------------------------------------

    async def rotate(self, account: str, secret_arn: str, token: str) -> None:
        host = self._require_host()
        cluster = host.cluster_for_secret(account, secret_arn)
        if cluster is None:
            self._store.delete(KIND_ROTATION, account, secret_arn)
            raise RotationFailed("no DB cluster manages its master password with this secret")
        started = time.monotonic()
        async with host.cluster_lock(cluster.resource_id):
            cluster = host.cluster_for_secret(account, secret_arn)
            if cluster is None:
                raise RotationFailed("the DB cluster of this secret was deleted")
            try:
                await self._rotate(cluster, account, secret_arn, token)
            except RotationFailed as exc:
                log.warning("cluster %s: rotating the master password failed: %s", cluster.identifier, exc.reason)
                host.set_secret_status(account, secret_arn, "impaired", exc.reason)
                raise
        host.set_secret_status(account, secret_arn, "active")
        log.info("cluster %s: master password rotated in %.0f ms", cluster.identifier,
                 (time.monotonic() - started) * 1000)

    async def _rotate(self, cluster: Cluster, account: str, arn: str, token: str) -> None:
        host = self._require_host()
        journal = self._store.get(KIND_ROTATION, account, arn)
        if journal is not None and journal.get("token") != token:
            # An earlier rotation was abandoned midway: put the database back on AWSCURRENT first.
            await self._undo(cluster, account, arn, f"rotation {journal.get('token')} was abandoned",
                             touched=_reached(journal, "setSecret"))
            journal = None
        stages = self._vault.versions(account, arn).get(token, [])
        if "AWSCURRENT" in stages:
            # finishSecret already happened (the process died before the journal was cleared).
            self._store.delete(KIND_ROTATION, account, arn)
            return
        if cluster.status != "available":
            raise RotationFailed(f"DB cluster {cluster.identifier} is {cluster.status}, not available")
        touched = journal is not None and _reached(journal, "setSecret")
        host.set_secret_status(account, arn, "rotating")

        # 1. createSecret
        self._record(account, arn, token, "createSecret")
        crash_point("createSecret:recorded")
        if "AWSPENDING" not in stages:
            self._vault.put_pending(account, arn, token,
                                    {"username": cluster.master_username, "password": generate_password()})
        crash_point("createSecret:done")
        pending = self._vault.read(account, arn, "AWSPENDING")
        if pending is None or pending[0] != token:
            raise RotationFailed("the AWSPENDING version of the secret is not the one of this rotation")
        password = str(pending[1].get("password") or "")

        # 2. setSecret
        self._record(account, arn, token, "setSecret")
        crash_point("setSecret:recorded")
        try:
            await self._runtime.set_master_password(cluster, password)
        except RuntimeFailure as exc:
            await self._roll_back(cluster, account, arn, f"setSecret: {exc.reason}", touched=touched)
        crash_point("setSecret:done")

        # 3. testSecret
        self._record(account, arn, token, "testSecret")
        crash_point("testSecret:recorded")
        try:
            await self._runtime.check_master_login(cluster, password)
        except RuntimeFailure as exc:
            await self._roll_back(cluster, account, arn, f"testSecret: {exc.reason}", touched=True)
        crash_point("testSecret:done")

        # 4. finishSecret
        self._record(account, arn, token, "finishSecret")
        crash_point("finishSecret:recorded")
        self._vault.finish(account, arn, token)
        crash_point("finishSecret:done")
        self._store.delete(KIND_ROTATION, account, arn)

    def _record(self, account: str, arn: str, token: str, step: str) -> None:
        self._store.put(KIND_ROTATION, account, arn, {"token": token, "step": step, "at": time.time()})

    async def _roll_back(self, cluster: Cluster, account: str, arn: str, reason: str, *, touched: bool) -> NoReturn:
        """Undo a rotation that cannot finish, then raise RotationFailed(reason)."""
        await self._undo(cluster, account, arn, reason, touched=touched)
        raise RotationFailed(reason)

    async def _undo(self, cluster: Cluster, account: str, arn: str, reason: str, *, touched: bool) -> None:
        """Put the database back on AWSCURRENT's password and drop AWSPENDING.

        ``touched``: the database may run with AWSPENDING's password. Then AWSCURRENT's is set
        again first; if even that fails AWSPENDING stays staged (it may be the only password that
        opens the database), the journal stays for the next attempt, and RotationFailed is raised."""
        if touched:
            current = self._vault.read(account, arn, "AWSCURRENT")
            if current is None:
                raise RotationFailed(f"{reason}; the secret has no AWSCURRENT version")
            try:
                await self._runtime.set_master_password(cluster, str(current[1].get("password") or ""))
            except RuntimeFailure as exc:
                raise RotationFailed(f"{reason}; setting the AWSCURRENT password again failed too: "
                                     f"{exc.reason}") from None
        self._vault.drop_pending(account, arn)
        self._store.delete(KIND_ROTATION, account, arn)


def _reached(journal: Mapping[str, Any], step: str) -> bool:
    recorded = str(journal.get("step") or "")
    return recorded in _STEP_ORDER and _STEP_ORDER.index(recorded) >= _STEP_ORDER.index(step)
