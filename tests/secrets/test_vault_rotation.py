"""The Vault and the rotation orchestrator on their own (a Store in tmp_path, a fake Rotator): the
interface RDS uses, success and failure paths of a rotation, and resuming with the same token after a
simulated crash (a new Vault and scheduler on the same Store)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from auroral.api.context import Principal, RequestContext
from auroral.crypto import Sealer
from auroral.errors import AccessDenied, AwsError
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.kms.keyring import Keyring
from auroral.secrets import schedule
from auroral.secrets.model import SECRET_KIND
from auroral.secrets.records import SecretRecords
from auroral.secrets.rotation import RotationScheduler
from auroral.secrets.vault import Vault
from auroral.store import Store

ACCOUNT = "111122223333"
REGION = "us-east-1"
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Crash(BaseException):
    """Stands in for kill -9: escapes the scheduler's error handling, so nothing after it runs."""


class FakeRotator:
    """AWS's four steps against a dict standing for the database's password, recording each step."""

    def __init__(self, vault: Vault, db: dict[str, str]) -> None:
        self.vault = vault
        self.db = db
        self.calls: list[str] = []
        self.fail_at: str | None = None
        self.crash_at: str | None = None

    def _step(self, name: str) -> None:
        if self.crash_at == name:
            self.crash_at = None
            raise Crash(name)
        if self.fail_at == name:
            raise RuntimeError(f"{name} failed")

    async def rotate(self, account: str, secret_arn: str, token: str) -> None:
        self.calls.append(token)
        self._step("create")
        self.vault.put_pending(account, secret_arn, token, {"username": "admin", "password": f"pw-{token}"})
        pending = self.vault.read(account, secret_arn, "AWSPENDING")
        assert pending is not None and pending[0] == token
        self._step("set")
        self.db["password"] = pending[1]["password"]
        self._step("test")
        assert self.db["password"] == f"pw-{token}"
        self._step("finish")
        self.vault.finish(account, secret_arn, token)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "auroral.db")
    yield s
    s.close()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(os.urandom(32))


def make_vault(store: Store, sealer: Sealer, clock: Clock) -> tuple[Vault, IamAuthorizer]:
    iam = IamAuthorizer(Directory(store, sealer, ACCOUNT))
    keyring = Keyring(store, sealer, REGION, iam, clock=clock)
    return Vault(SecretRecords(store, keyring, REGION, clock=clock)), iam


def ctx_for(iam: IamAuthorizer, principal: Principal) -> RequestContext:
    return RequestContext(
        request_id="r", service="rds", operation="CreateDBCluster", region=REGION, principal=principal,
        source_ip="127.0.0.1", user_agent="test", secure_transport=True, time=dt.datetime.now(dt.UTC),
        params={}, authorizer=iam,
    )


def root(iam: IamAuthorizer) -> RequestContext:
    return ctx_for(iam, Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "root", ACCOUNT, "root"))


def managed(vault: Vault, iam: IamAuthorizer, password: str = "first") -> str:
    secret = vault.create_managed_secret(
        root(iam), name="rds!cluster-1234", owning_service="rds", description="Secret associated with a cluster",
        tags={"aws:rds:primaryDBClusterArn": "arn:aws:rds:us-east-1:111122223333:cluster:c1"},
        value={"username": "admin", "password": password}, kms_key_id=None,
    )
    assert secret.arn.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!cluster-1234-")
    assert secret.kms_key_arn.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    return secret.arn


# --- the Vault ------------------------------------------------------------------------------


def test_vault_managed_secret_lifecycle(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    arn = managed(vault, iam)
    vid, value = vault.read(ACCOUNT, arn) or ("", {})
    assert value == {"username": "admin", "password": "first"}
    assert vault.versions(ACCOUNT, arn) == {vid: ["AWSCURRENT"]}

    vault.put_pending(ACCOUNT, arn, "t1", {"username": "admin", "password": "second"})
    vault.put_pending(ACCOUNT, arn, "t1", {"username": "admin", "password": "ignored"})  # idempotent: kept
    assert vault.read(ACCOUNT, arn, "AWSPENDING") == ("t1", {"username": "admin", "password": "second"})
    vault.finish(ACCOUNT, arn, "t1")
    vault.finish(ACCOUNT, arn, "t1")  # idempotent
    assert vault.versions(ACCOUNT, arn) == {vid: ["AWSPREVIOUS"], "t1": ["AWSCURRENT"]}
    assert vault.read(ACCOUNT, arn, "AWSPENDING") is None

    vault.put_pending(ACCOUNT, arn, "t2", {"username": "admin", "password": "third"})
    vault.drop_pending(ACCOUNT, arn)
    assert "t2" not in vault.versions(ACCOUNT, arn)
    assert vault.read(ACCOUNT, arn) == ("t1", {"username": "admin", "password": "second"})

    # Nothing in plaintext in the store.
    raw = json.dumps(store.list(SECRET_KIND))
    assert "second" not in raw and "first" not in raw and "third" not in raw

    vault.delete_managed_secret(ACCOUNT, arn)
    assert vault.read(ACCOUNT, arn) is None


def test_vault_create_needs_the_callers_permissions(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/dev", "user", "AIDAEXAMPLEDEV", "dev")
    with pytest.raises(AccessDenied):
        vault.create_managed_secret(ctx_for(iam, principal), name="rds!cluster-x", owning_service="rds",
                                    description="", tags={}, value={"password": "p"}, kms_key_id=None)
    assert store.list(SECRET_KIND) == []  # nothing half-made


def test_vault_reencrypt(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    arn = managed(vault, iam)
    keyring = vault.records.keyring
    key = keyring.create_key(ACCOUNT, policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
        "Resource": "*"}]}))
    new_arn = vault.reencrypt(root(iam), ACCOUNT, arn, key.key_id)
    assert new_arn == key.arn
    assert vault.read(ACCOUNT, arn) is not None
    rec = keyring.record(key.ref)
    rec.state = "Disabled"
    keyring.records.put_key(rec)
    with pytest.raises(AwsError) as err:
        vault.read(ACCOUNT, arn)
    assert err.value.code == "DecryptionFailure"


def test_schedule_expressions() -> None:
    t = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC).timestamp()
    assert schedule.next_after(t, every_days=7, schedule=None) == t + 7 * DAY
    assert schedule.next_after(t, every_days=None, schedule="rate(10 days)") == t + 10 * DAY
    nxt = schedule.next_after(t, every_days=None, schedule="cron(0 16 1,15 * ? *)")
    assert nxt == dt.datetime(2024, 1, 1, 16, 0, tzinfo=dt.UTC).timestamp()
    later = schedule.next_after(nxt or 0.0, every_days=None, schedule="cron(0 16 1,15 * ? *)")
    assert later == dt.datetime(2024, 1, 15, 16, 0, tzinfo=dt.UTC).timestamp()
    sunday = schedule.next_after(t, every_days=None, schedule="cron(30 2 ? * SUN *)")
    assert sunday == dt.datetime(2024, 1, 7, 2, 30, tzinfo=dt.UTC).timestamp()
    with pytest.raises(schedule.ScheduleError):
        schedule.validate("cron(0 0 L * ? *)")
    with pytest.raises(schedule.ScheduleError):
        schedule.validate("rate(2 hours)")


# --- rotation -------------------------------------------------------------------------------


def test_rotation_success_sets_dates(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    scheduler = RotationScheduler(vault, check_seconds=60)
    db: dict[str, str] = {}
    rotator = FakeRotator(vault, db)
    vault.register_rotator("rds", rotator)
    succeeded: list[str] = []
    scheduler.on_rotation_succeeded(lambda svc, acct, arn: succeeded.append(arn))
    arn = managed(vault, iam)
    vault.set_rotation(ACCOUNT, arn, every_days=7)
    assert vault.records.by_arn(ACCOUNT, arn).rotation.next_rotation == clock.now + 7 * DAY  # type: ignore[union-attr]

    async def go() -> str:
        token = vault.rotate_now(ACCOUNT, arn)
        await scheduler.wait_idle()
        return token

    token = asyncio.run(go())
    assert rotator.calls == [token]
    assert vault.read(ACCOUNT, arn) == (token, {"username": "admin", "password": f"pw-{token}"})
    assert db["password"] == f"pw-{token}"
    secret = vault.records.by_arn(ACCOUNT, arn)
    assert secret is not None and secret.run is None
    assert secret.rotation.last_rotated == clock.now
    assert secret.rotation.next_rotation == clock.now + 7 * DAY
    assert succeeded == [arn]
    assert vault.rotation_status(ACCOUNT, arn) is None


def test_scheduled_rotation_when_due(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    scheduler = RotationScheduler(vault, check_seconds=60)
    rotator = FakeRotator(vault, {})
    vault.register_rotator("rds", rotator)
    arn = managed(vault, iam)
    vault.set_rotation(ACCOUNT, arn, every_days=7)

    async def tick() -> int:
        started = await scheduler.tick()
        await scheduler.wait_idle()
        return started

    assert asyncio.run(tick()) == 0
    clock.now += 7 * DAY + 1
    assert asyncio.run(tick()) == 1
    assert len(rotator.calls) == 1
    assert asyncio.run(tick()) == 0  # next one is a week away again


def test_rotation_failure_keeps_current_retries_and_notifies(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    scheduler = RotationScheduler(vault, check_seconds=60, retry_base=30)
    db: dict[str, str] = {}
    rotator = FakeRotator(vault, db)
    rotator.fail_at = "test"
    vault.register_rotator("rds", rotator)
    failures: list[tuple[str, str, str, str]] = []
    scheduler.on_rotation_failed(lambda *args: failures.append(args))
    arn = managed(vault, iam)
    before = vault.read(ACCOUNT, arn)

    async def first() -> str:
        token = scheduler.rotate_now(ACCOUNT, arn)
        await scheduler.wait_idle()
        return token

    token = asyncio.run(first())
    assert vault.read(ACCOUNT, arn) == before  # AWSCURRENT untouched
    run = vault.rotation_status(ACCOUNT, arn)
    assert run is not None and run.status == "failed" and run.token == token
    assert run.error == "RuntimeError: test failed" and run.attempts == 1
    assert run.retry_at == clock.now + 30
    assert failures == [("rds", ACCOUNT, arn, "RuntimeError: test failed")]

    async def tick() -> None:
        await scheduler.tick()
        await scheduler.wait_idle()

    asyncio.run(tick())  # not yet due
    assert rotator.calls == [token]
    clock.now += 31
    rotator.fail_at = None
    asyncio.run(tick())  # retried with the same token, succeeds
    assert rotator.calls == [token, token]
    assert vault.rotation_status(ACCOUNT, arn) is None
    assert vault.read(ACCOUNT, arn) == (token, {"username": "admin", "password": f"pw-{token}"})


def test_resume_after_crash_uses_the_same_token(store: Store, sealer: Sealer, clock: Clock) -> None:
    for step in ("create", "set", "test", "finish"):
        vault, iam = make_vault(store, sealer, clock)
        scheduler = RotationScheduler(vault, check_seconds=60)
        db: dict[str, str] = {}
        rotator = FakeRotator(vault, db)
        rotator.crash_at = step
        vault.register_rotator("rds", rotator)
        arn = managed(vault, iam) if step == "create" else next(
            s.arn for s in vault.records.all(ACCOUNT))

        async def crash(v: Vault = vault, s: RotationScheduler = scheduler, a: str = arn) -> str:
            token = v.rotate_now(ACCOUNT, a)
            await asyncio.gather(*s._tasks.values(), return_exceptions=True)
            return token

        token = asyncio.run(crash())
        assert vault.rotation_status(ACCOUNT, arn) is not None

        # "Restart": a new Vault and scheduler on the same Store.
        vault2, _iam2 = make_vault(store, sealer, clock)
        scheduler2 = RotationScheduler(vault2, check_seconds=60)
        rotator2 = FakeRotator(vault2, db)
        vault2.register_rotator("rds", rotator2)

        async def resume(s: RotationScheduler = scheduler2) -> int:
            n = await s.resume()
            await s.wait_idle()
            return n

        assert asyncio.run(resume()) == 1, step
        assert rotator2.calls == [token], step
        assert vault2.read(ACCOUNT, arn) == (token, {"username": "admin", "password": f"pw-{token}"}), step
        assert vault2.rotation_status(ACCOUNT, arn) is None
        assert "AWSPENDING" not in json.dumps(vault2.versions(ACCOUNT, arn))


def test_rotate_while_running_is_refused(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    scheduler = RotationScheduler(vault, check_seconds=60)
    gate = asyncio.Event()

    class Slow:
        async def rotate(self, account: str, secret_arn: str, token: str) -> None:
            await gate.wait()

    vault.register_rotator("rds", Slow())
    arn = managed(vault, iam)

    async def go() -> None:
        scheduler.rotate_now(ACCOUNT, arn)
        with pytest.raises(AwsError) as err:
            scheduler.rotate_now(ACCOUNT, arn)
        assert err.value.code == "InvalidRequestException"
        gate.set()
        await scheduler.wait_idle()

    asyncio.run(go())


def test_scheduler_task_starts_and_stops(store: Store, sealer: Sealer, clock: Clock) -> None:
    vault, iam = make_vault(store, sealer, clock)
    scheduler = RotationScheduler(vault, check_seconds=0.05)
    rotator = FakeRotator(vault, {})
    vault.register_rotator("rds", rotator)
    arn = managed(vault, iam)
    vault.set_rotation(ACCOUNT, arn, every_days=1)
    clock.now += 2 * DAY

    async def go() -> None:
        await scheduler.start()
        for _ in range(100):
            if rotator.calls and not scheduler._tasks:
                break
            await asyncio.sleep(0.02)
        await scheduler.stop()

    asyncio.run(go())
    assert len(rotator.calls) == 1
