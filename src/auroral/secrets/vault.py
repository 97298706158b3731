"""The Vault: Secrets Manager's internal interface for services that own secrets (RDS's managed master
passwords). It does on the caller's behalf only what AWS authorizes for it, and otherwise works on
secrets directly, without the API's refusals for service-owned secrets.

    create_managed_secret(ctx, *, name, owning_service, description, tags, value, kms_key_id) -> ManagedSecret
    delete_managed_secret(account, arn)                 immediate, no recovery window
    read(account, arn, stage="AWSCURRENT")              -> (version id, JSON value) | None
    versions(account, arn)                              -> {version id: [stages]}
    put_pending(account, arn, version_id, value)        idempotent AWSPENDING version
    finish(account, arn, version_id)                    AWSCURRENT moves there, AWSPENDING removed
    drop_pending(account, arn)                          roll a rotation back
    reencrypt(ctx, account, arn, kms_key_id)            -> new key ARN
    set_rotation(account, arn, *, every_days=7, schedule=None)
    register_rotator(owning_service, rotator)           the Rotator the scheduler calls
    rotate_now(ctx_or_account, arn) -> token            (delegates to the attached RotationScheduler)
    rotation_status(account, arn) -> RotationRun | None

Values are JSON objects; they are sealed by ``envelope`` like every API-written version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from auroral.api.context import RequestContext
from auroral.kms.model import KeyRef
from auroral.secrets import envelope, errors, schedule
from auroral.secrets.model import CURRENT, PENDING, RotationRun, Secret, new_arn
from auroral.secrets.records import SecretRecords

if TYPE_CHECKING:
    from auroral.secrets.rotation import RotationScheduler


@dataclass(frozen=True)
class ManagedSecret:
    arn: str
    name: str
    kms_key_arn: str
    version_id: str


class Rotator(Protocol):
    async def rotate(self, account: str, secret_arn: str, token: str) -> None:
        """AWS's four steps for the secret with rotation token (version id) ``token``: createSecret
        (``put_pending``), setSecret, testSecret, finishSecret (``finish``); idempotent and resumable
        given the same token."""
        ...


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(value), separators=(",", ":")).encode()


class Vault:
    def __init__(self, records: SecretRecords) -> None:
        self.records = records
        self.rotators: dict[str, Rotator] = {}
        self.scheduler: RotationScheduler | None = None

    @property
    def region(self) -> str:
        return self.records.region

    # --- lookups ------------------------------------------------------------------------

    def _secret(self, account: str, arn: str) -> Secret:
        secret = self.records.by_arn(account, arn)
        if secret is None:
            raise errors.not_found()
        return secret

    def _authorize_key(self, ctx: RequestContext, owning_service: str, kms_key_id: str | None
                       ) -> tuple[KeyRef, bool]:
        key, customer = self.records.resolve_key(ctx.account, kms_key_id)
        keyring = self.records.keyring
        keyring.check(ctx, "kms:DescribeKey", key, via_service=owning_service)
        if customer:
            keyring.check(ctx, "kms:Decrypt", key, via_service="secretsmanager")
            keyring.check(ctx, "kms:GenerateDataKey", key, via_service="secretsmanager")
            keyring.check(ctx, "kms:CreateGrant", key, via_service=owning_service)
        return key, customer

    # --- managed secrets ----------------------------------------------------------------

    def create_managed_secret(
        self,
        ctx: RequestContext,
        *,
        name: str,
        owning_service: str,
        description: str,
        tags: Mapping[str, str],
        value: Mapping[str, Any],
        kms_key_id: str | None,
    ) -> ManagedSecret:
        """Authorize what AWS requires of the caller (secretsmanager:CreateSecret and TagResource on the
        new ARN, kms:DescribeKey; customer key: kms:Decrypt, GenerateDataKey, CreateGrant) — AccessDenied
        with nothing created otherwise — then store ``value`` as version 1, staged AWSCURRENT."""
        account = ctx.account
        arn = new_arn(self.region, account, name)
        tag_keys: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
        tag_keys["aws:TagKeys"] = list(tags)
        keys: dict[str, Any] = {"secretsmanager:Name": name, "secretsmanager:Description": description, **tag_keys}
        if kms_key_id:
            keys["secretsmanager:KmsKeyId"] = kms_key_id
        ctx.authorize("secretsmanager:CreateSecret", [arn], keys)
        ctx.authorize("secretsmanager:TagResource", [arn], {"secretsmanager:SecretId": arn, **tag_keys})
        key, customer = self._authorize_key(ctx, owning_service, kms_key_id)
        now = self.records.clock()
        version_id = str(uuid.uuid4())
        with self.records.lock:
            if self.records.get(account, name) is not None:
                raise errors.exists(name)
            secret = Secret(account=account, name=name, arn=arn, kms_key_arn=key.arn, customer_key=customer,
                            created=now, last_changed=now, description=description,
                            tags=[[k, v] for k, v in tags.items()], owning_service=owning_service)
            self.records.new_version(secret, version_id, _encode(value), False, [CURRENT])
            self.records.save(secret)
        return ManagedSecret(arn=arn, name=name, kms_key_arn=key.arn, version_id=version_id)

    def delete_managed_secret(self, account: str, arn: str) -> None:
        with self.records.lock:
            secret = self.records.by_arn(account, arn)
            if secret is not None:
                self.records.remove(secret)

    def read(self, account: str, arn: str, stage: str = CURRENT) -> tuple[str, dict[str, Any]] | None:
        secret = self.records.by_arn(account, arn)
        version = secret.version_with(stage) if secret is not None else None
        if secret is None or version is None:
            return None
        value = json.loads(self.records.open(secret, version))
        return version.version_id, dict(value)

    def versions(self, account: str, arn: str) -> dict[str, list[str]]:
        secret = self._secret(account, arn)
        return {vid: list(v.stages) for vid, v in secret.versions.items()}

    def put_pending(self, account: str, arn: str, version_id: str, value: Mapping[str, Any]) -> None:
        with self.records.lock:
            secret = self._secret(account, arn)
            if version_id in secret.versions:
                secret.attach(version_id, PENDING)
            else:
                self.records.new_version(secret, version_id, _encode(value), False, [PENDING])
            self.records.save(secret)

    def finish(self, account: str, arn: str, version_id: str) -> None:
        with self.records.lock:
            secret = self._secret(account, arn)
            version = secret.versions.get(version_id)
            if version is None:
                raise errors.no_value_for_version(version_id)
            if CURRENT in version.stages and secret.version_with(PENDING) is None:
                return
            secret.attach(version_id, CURRENT)
            for v in secret.versions.values():
                if PENDING in v.stages:
                    v.stages.remove(PENDING)
            secret.last_changed = self.records.clock()
            self.records.save(secret)

    def drop_pending(self, account: str, arn: str) -> None:
        with self.records.lock:
            secret = self._secret(account, arn)
            for vid, v in list(secret.versions.items()):
                if PENDING in v.stages:
                    v.stages.remove(PENDING)
                    if not v.stages:
                        del secret.versions[vid]
            self.records.save(secret)

    def reencrypt(self, ctx: RequestContext, account: str, arn: str, kms_key_id: str | None) -> str:
        with self.records.lock:
            secret = self._secret(account, arn)
            key, customer = self._authorize_key(ctx, secret.owning_service or "secretsmanager", kms_key_id)
            if key.arn != secret.kms_key_arn:
                if secret.customer_key:
                    # Re-encrypting reads every version with the key in use now: the caller needs
                    # kms:Decrypt on it, as for UpdateSecret KmsKeyId. Otherwise a caller that key keeps
                    # from the value moves the secret to a key it may use, and reads it there.
                    current = self.records.key_of(secret)
                    for version_id in secret.versions:
                        self.records.keyring.check(ctx, "kms:Decrypt", current, via_service="secretsmanager",
                                                   encryption_context=envelope.context(arn, version_id))
                self.records.reseal(secret, key)
            secret.customer_key = customer
            secret.last_changed = self.records.clock()
            self.records.save(secret)
            return key.arn

    def set_rotation(self, account: str, arn: str, *, every_days: int | None = 7, schedule: str | None = None) -> None:
        with self.records.lock:
            secret = self._secret(account, arn)
            self.configure_rotation(secret, every_days=every_days, schedule_expression=schedule)
            self.records.save(secret)

    def configure_rotation(self, secret: Secret, *, every_days: int | None, schedule_expression: str | None,
                           duration: str | None = None) -> None:
        """Turn rotation on with these rules; NextRotationDate counts from the last rotation (or now)."""
        rot = secret.rotation
        rot.enabled = True
        rot.every_days = None if schedule_expression else every_days
        rot.schedule = schedule_expression
        rot.duration = duration
        base = rot.last_rotated or self.records.clock()
        rot.next_rotation = schedule.next_after(base, every_days=rot.every_days, schedule=rot.schedule)

    # --- rotation -----------------------------------------------------------------------

    def register_rotator(self, owning_service: str, rotator: Rotator) -> None:
        self.rotators[owning_service] = rotator

    def rotate_now(self, ctx_or_account: RequestContext | str, arn: str) -> str:
        if self.scheduler is None:
            raise RuntimeError("no rotation scheduler is attached to this vault")
        return self.scheduler.rotate_now(ctx_or_account, arn)

    def rotation_status(self, account: str, arn: str) -> RotationRun | None:
        """The recorded rotation of the secret, if one is running or failed (RDS's SecretStatus)."""
        secret = self.records.by_arn(account, arn)
        return secret.run if secret is not None else None
