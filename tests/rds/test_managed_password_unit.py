"""Managed master passwords against the real Secrets Manager vault and KMS keyring, with the fake
runtime (which knows the one password its fake server accepts): the rotation's steps, their
idempotence for one token, and the roll-backs that keep AWSCURRENT or AWSPENDING opening the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auroral.crypto import Sealer
from auroral.errors import AccessDenied, AwsError
from auroral.kms.keyring import Keyring
from auroral.rds.managed_password import (
    KIND_ROTATION,
    ManagedPasswords,
    RotationFailed,
    generate_password,
)
from auroral.rds.service import RdsService
from auroral.secrets.records import SecretRecords
from auroral.secrets.rotation import RotationScheduler
from auroral.secrets.vault import Vault
from auroral.store import Store

from .conftest import Env
from .fakes import ACCOUNT, REGION, FakeAuthorizer, FakeDirectory, FakeRuntime, make_ctx


class CallerKeyring(Keyring):
    """Key access decided by the test's FakeAuthorizer (key policies are KMS's own tests' business)."""

    def check(self, ctx: Any, action: str, key: Any, **kw: Any) -> None:
        ctx.authorize(action, [key.arn])


@dataclasses.dataclass
class Managed:
    env: Env
    vault: Vault
    scheduler: RotationScheduler
    passwords: ManagedPasswords

    async def create(self, ident: str = "c1", **extra: Any) -> dict[str, Any]:
        out = await self.env.call("CreateDBCluster", DBClusterIdentifier=ident, Engine="aurora-postgresql",
                                  EngineVersion="16.4", MasterUsername="master", ManageMasterUserPassword=True,
                                  **extra)
        await self.env.service.drain()
        return dict(out["DBCluster"])

    def secret_arn(self, ident: str = "c1") -> str:
        cluster = self.env.service._cluster(ACCOUNT, ident)
        assert cluster.master_user_secret is not None
        return cluster.master_user_secret["SecretArn"]

    def password(self, stage: str = "AWSCURRENT", ident: str = "c1") -> str | None:
        found = self.vault.read(ACCOUNT, self.secret_arn(ident), stage)
        return None if found is None else str(found[1]["password"])

    def db_password(self, ident: str = "c1") -> str:
        cluster = self.env.service._cluster(ACCOUNT, ident)
        return self.env.runtime.servers[cluster.resource_id].password

    async def status(self, ident: str = "c1") -> str:
        return str((await self.env.describe_cluster(ident))["MasterUserSecret"]["SecretStatus"])


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[Managed]:
    store = Store(tmp_path / "store.db")
    keyring = CallerKeyring(store, Sealer(b"k" * 32), REGION)
    vault = Vault(SecretRecords(store, keyring, REGION))
    scheduler = RotationScheduler(vault, retry_base=3600)
    runtime, directory, authorizer = FakeRuntime(), FakeDirectory(), FakeAuthorizer()
    passwords = ManagedPasswords(vault, store, runtime)
    vault.register_rotator("rds", passwords)
    scheduler.on_rotation_failed(passwords.rotation_failed)
    service = RdsService(store, runtime, directory, REGION, secrets=passwords)
    yield Managed(Env(store, runtime, directory, authorizer, service), vault, scheduler, passwords)
    store.close()


def test_generated_passwords_are_rds_valid() -> None:
    for _ in range(200):
        password = generate_password()
        assert len(password) == 28
        assert not set(password) & set('/"@ \'\\`')
        assert all(33 <= ord(c) < 127 for c in password)
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)


async def test_create_sets_the_secret_password_then_active(managed: Managed) -> None:
    created = await managed.create()
    secret = created["MasterUserSecret"]
    assert set(secret) == {"SecretArn", "SecretStatus", "KmsKeyId"}
    assert secret["SecretStatus"] == "creating"
    assert ":secret:rds!cluster-" in secret["SecretArn"]
    assert await managed.status() == "active"
    assert managed.db_password() == managed.password()
    stored = managed.vault.records.by_arn(ACCOUNT, managed.secret_arn())
    assert stored is not None and stored.owning_service == "rds"
    assert stored.rotation.enabled and stored.rotation.every_days == 7
    assert stored.description == f"Secret associated with primary RDS DB cluster: {created['DBClusterArn']}"
    assert stored.tag_map == {"aws:rds:primaryDBClusterArn": created["DBClusterArn"],
                              "aws:secretsmanager:owningService": "rds"}


async def test_denied_secret_creation_leaves_nothing(managed: Managed) -> None:
    managed.env.authorizer.deny.add("secretsmanager:CreateSecret")
    with pytest.raises(AccessDenied):
        await managed.create()
    assert managed.env.service._get_cluster(ACCOUNT, "c1") is None
    assert managed.vault.records.all(ACCOUNT) == []
    assert managed.env.runtime.servers == {}


async def test_rotation_moves_current_and_keeps_previous(managed: Managed) -> None:
    await managed.create()
    arn, old = managed.secret_arn(), managed.password()
    await managed.env.call("ModifyDBCluster", DBClusterIdentifier="c1", RotateMasterUserPassword=True,
                           ApplyImmediately=True)
    assert await managed.status() == "rotating"
    await managed.scheduler.wait_idle()
    assert await managed.status() == "active"
    new = managed.password()
    assert new != old and managed.db_password() == new
    assert managed.password("AWSPREVIOUS") == old
    assert managed.password("AWSPENDING") is None
    assert managed.env.store.get(KIND_ROTATION, ACCOUNT, arn) is None


async def test_rotate_is_idempotent_for_one_token(managed: Managed) -> None:
    await managed.create()
    arn = managed.secret_arn()
    await managed.passwords.rotate(ACCOUNT, arn, "token-1")
    first = managed.password()
    await managed.passwords.rotate(ACCOUNT, arn, "token-1")  # resumed after finishSecret
    assert managed.password() == first == managed.db_password()
    assert managed.vault.versions(ACCOUNT, arn)["token-1"] == ["AWSCURRENT"]


async def test_resume_after_set_secret_reuses_the_pending_password(managed: Managed) -> None:
    await managed.create()
    arn = managed.secret_arn()
    # as if the process died right after setSecret: AWSPENDING staged, the database has it
    pending = generate_password()
    managed.vault.put_pending(ACCOUNT, arn, "token-2", {"username": "master", "password": pending})
    cluster = managed.env.service._cluster(ACCOUNT, "c1")
    managed.env.runtime.servers[cluster.resource_id].password = pending
    managed.env.store.put(KIND_ROTATION, ACCOUNT, arn, {"token": "token-2", "step": "setSecret"})
    await managed.passwords.rotate(ACCOUNT, arn, "token-2")
    assert managed.password() == pending == managed.db_password()


async def test_set_secret_failure_drops_pending_and_impairs(managed: Managed) -> None:
    await managed.create()
    arn, old = managed.secret_arn(), managed.password()
    managed.env.runtime.fail["set_master_password"] = "server unreachable"
    with pytest.raises(RotationFailed, match="server unreachable"):
        await managed.passwords.rotate(ACCOUNT, arn, "token-3")
    assert await managed.status() == "impaired"
    assert managed.password("AWSPENDING") is None and managed.password() == old == managed.db_password()
    # retried (same token) once the database is back
    del managed.env.runtime.fail["set_master_password"]
    await managed.passwords.rotate(ACCOUNT, arn, "token-3")
    assert await managed.status() == "active" and managed.db_password() == managed.password() != old


async def test_test_secret_failure_sets_current_again(managed: Managed) -> None:
    await managed.create()
    arn, old = managed.secret_arn(), managed.password()
    managed.env.runtime.fail["check_master_login"] = "password authentication failed"
    with pytest.raises(RotationFailed, match="testSecret"):
        await managed.passwords.rotate(ACCOUNT, arn, "token-4")
    assert managed.db_password() == old == managed.password()
    assert managed.password("AWSPENDING") is None
    assert await managed.status() == "impaired"


async def test_failed_roll_back_keeps_pending(managed: Managed) -> None:
    await managed.create()
    arn, old = managed.secret_arn(), managed.password()
    runtime = managed.env.runtime
    runtime.fail["check_master_login"] = "login refused"
    original = runtime.set_master_password
    calls = 0

    async def set_once(cluster: Any, password: str) -> None:  # the roll-back's ALTER ROLE fails
        nonlocal calls
        calls += 1
        if calls > 1:
            raise __import__("auroral.rds.runtime", fromlist=["RuntimeFailure"]).RuntimeFailure("down")
        await original(cluster, password)

    runtime.set_master_password = set_once  # type: ignore[method-assign]
    with pytest.raises(RotationFailed, match="too"):
        await managed.passwords.rotate(ACCOUNT, arn, "token-5")
    pending = managed.password("AWSPENDING")
    assert pending is not None and managed.db_password() == pending != old  # AWSPENDING still opens it
    # the next attempt with another token puts AWSCURRENT back first, then rotates
    runtime.set_master_password = original  # type: ignore[method-assign]
    del runtime.fail["check_master_login"]
    await managed.passwords.rotate(ACCOUNT, arn, "token-6")
    assert managed.db_password() == managed.password()
    assert "token-6" in managed.vault.versions(ACCOUNT, arn) and await managed.status() == "active"


async def test_modify_validation(managed: Managed) -> None:
    await managed.create()
    env = managed.env
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", RotateMasterUserPassword=True)
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", ManageMasterUserPassword=False)
    assert (err.code, err.message) == (
        "InvalidParameterCombination",
        "MasterUserPassword must be provided when ManageMasterUserPassword is set to false.")
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", ManageMasterUserPassword=True,
                          MasterUserPassword="Some-pass-1")
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="c1", MasterUserPassword="Some-pass-1")
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("CreateDBCluster", DBClusterIdentifier="c2", Engine="aurora-postgresql",
                          MasterUsername="master", ManageMasterUserPassword=True, MasterUserPassword="Some-pass-1")
    assert err.code == "InvalidParameterValue"
    await env.cluster("plain")
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="plain", RotateMasterUserPassword=True,
                          ApplyImmediately=True)
    assert err.code == "InvalidParameterCombination"
    err = await env.fails("ModifyDBCluster", DBClusterIdentifier="plain", MasterUserSecretKmsKeyId="alias/x")
    assert err.message == "A ManageMasterUserPassword value is required when MasterUserSecretKmsKeyId is specified."


async def test_management_off_and_on_again(managed: Managed) -> None:
    await managed.create()
    env, arn = managed.env, managed.secret_arn()
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", ManageMasterUserPassword=False,
                         MasterUserPassword="Own-pass-123")
    assert "MasterUserSecret" not in out["DBCluster"]
    await env.service.drain()
    assert managed.db_password() == "Own-pass-123"
    assert managed.vault.records.by_arn(ACCOUNT, arn) is None
    out = await env.call("ModifyDBCluster", DBClusterIdentifier="c1", ManageMasterUserPassword=True)
    assert out["DBCluster"]["MasterUserSecret"]["SecretStatus"] == "creating"
    await env.service.drain()
    assert await managed.status() == "active"
    assert managed.secret_arn() != arn and managed.db_password() == managed.password()


async def test_delete_cluster_deletes_the_secret(managed: Managed) -> None:
    await managed.create()
    arn = managed.secret_arn()
    await managed.env.call("DeleteDBCluster", DBClusterIdentifier="c1", SkipFinalSnapshot=True)
    await managed.env.service.drain()
    assert managed.vault.records.by_arn(ACCOUNT, arn) is None


async def test_recovery_sets_a_creating_secrets_password(managed: Managed) -> None:
    await managed.create()
    env, arn = managed.env, managed.secret_arn()
    cluster = env.service._cluster(ACCOUNT, "c1")
    assert cluster.master_user_secret is not None
    cluster.master_user_secret["SecretStatus"] = "creating"  # as if killed before the status moved
    env.service._save_cluster(cluster)
    env.runtime.servers[cluster.resource_id].password = "something-else"
    restarted = RdsService(env.store, env.runtime, env.directory, REGION, secrets=managed.passwords)
    await restarted.recover()
    assert managed.db_password() == managed.password()
    assert restarted.cluster_for_secret(ACCOUNT, arn) is not None
    assert (restarted._cluster(ACCOUNT, "c1").master_user_secret or {})["SecretStatus"] == "active"


def test_errors_are_aws_errors() -> None:
    assert issubclass(AccessDenied, AwsError)
    assert make_ctx(FakeAuthorizer()).account == ACCOUNT
