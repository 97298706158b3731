"""Rotation orchestration: on demand (RotateSecret, RDS's RotateMasterUserPassword) and on schedule.

A rotation is recorded in the secret's document (``RotationRun``: token, start time, status) *before*
the owning service's ``Rotator`` is called, so a process killed at any step leaves a record that
``resume()`` finds at the next start and hands to the rotator again with the same token (rotators are
idempotent for a token). Outcomes:

    success  run cleared, LastRotatedDate = now, NextRotationDate from the rules, listeners told
    failure  run kept as "failed" with the reason, AWSCURRENT untouched, retried with the same token
             after an exponential backoff, ``on_rotation_failed`` listeners told (RDS: "impaired")

The scheduler task wakes every ``AURORAL_ROTATION_CHECK_SECONDS`` (default 60): it purges secrets
whose recovery window ended, retries failed runs that are due and starts rotations whose
NextRotationDate has passed. Secrets that rotate with a Lambda function have no rotator here: their
runs fail with a reason saying so (auroral cannot invoke Lambda).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.secrets import errors, schedule
from auroral.secrets.model import RotationRun, Secret
from auroral.secrets.vault import Vault

log = logging.getLogger(__name__)

FailureListener = Callable[[str, str, str, str], None]  # (owning service, account, arn, reason)
SuccessListener = Callable[[str, str, str], None]  # (owning service, account, arn)

NO_LAMBDA = "auroral cannot invoke AWS Lambda rotation functions; only service-managed secrets rotate here."


def check_seconds_from_env(default: float = 60.0) -> float:
    text = os.environ.get("AURORAL_ROTATION_CHECK_SECONDS")
    try:
        return max(0.05, float(text)) if text else default
    except ValueError:
        return default


def _reason(exc: BaseException) -> str:
    # Reasons reach logs, the store and RDS's status: only an error's code and message, never values.
    if isinstance(exc, AwsError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class RotationScheduler:
    def __init__(self, vault: Vault, *, check_seconds: float | None = None, retry_base: float = 30.0,
                 retry_max: float = 3600.0) -> None:
        self.vault = vault
        self.records = vault.records
        self.check_seconds = check_seconds if check_seconds is not None else check_seconds_from_env()
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._failure_listeners: list[FailureListener] = []
        self._success_listeners: list[SuccessListener] = []
        vault.scheduler = self

    # --- listeners ----------------------------------------------------------------------

    def on_rotation_failed(self, listener: FailureListener) -> None:
        self._failure_listeners.append(listener)

    def on_rotation_succeeded(self, listener: SuccessListener) -> None:
        self._success_listeners.append(listener)

    # --- starting rotations -------------------------------------------------------------

    def running(self, account: str, arn: str) -> bool:
        task = self._tasks.get((account, arn))
        return task is not None and not task.done()

    def begin(self, account: str, arn: str, token: str | None = None) -> str:
        """Record a rotation of the secret and return its token. A failed (or not yet resumed) run is
        continued with its own token; a running one is refused as AWS does."""
        with self.records.lock:
            secret = self.records.by_arn(account, arn)
            if secret is None:
                raise errors.not_found()
            if secret.run is not None:
                if self.running(account, arn):
                    raise errors.rotation_in_progress()
                secret.run.status = "rotating"
                secret.run.retry_at = None
            else:
                secret.run = RotationRun(token=token or str(uuid.uuid4()), started=self.records.clock())
            self.records.save(secret)
            return secret.run.token

    def rotate_now(self, ctx_or_account: RequestContext | str, arn: str, token: str | None = None) -> str:
        account = ctx_or_account if isinstance(ctx_or_account, str) else ctx_or_account.account
        token = self.begin(account, arn, token)
        self._spawn(account, arn, token)
        return token

    def _spawn(self, account: str, arn: str, token: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # recorded: the scheduler's next tick (or resume) runs it
        if self.running(account, arn):
            return
        task = loop.create_task(self.run(account, arn, token), name=f"rotate {arn}")
        self._tasks[(account, arn)] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get((account, arn)) is done:
                del self._tasks[(account, arn)]

        task.add_done_callback(forget)

    def cancel(self, account: str, arn: str) -> str | None:
        """Stop rotating the secret (CancelRotateSecret). A failed run is forgotten; a step that is running
        finishes. Returns the token of the run that was recorded, if any."""
        with self.records.lock:
            secret = self.records.by_arn(account, arn)
            if secret is None:
                raise errors.not_found()
            token = secret.run.token if secret.run is not None else None
            secret.rotation.enabled = False
            secret.rotation.next_rotation = None
            if secret.run is not None and not self.running(account, arn):
                secret.run = None
            self.records.save(secret)
            return token

    # --- one rotation -------------------------------------------------------------------

    async def run(self, account: str, arn: str, token: str) -> None:
        secret = self.records.by_arn(account, arn)
        if secret is None or secret.run is None or secret.run.token != token:
            return
        service = secret.owning_service or ""
        rotator = self.vault.rotators.get(service) if service else None
        if rotator is None:
            reason = NO_LAMBDA if not service else f"No rotator is registered for secrets owned by {service}."
            self._failed(account, arn, token, service, reason)
            return
        try:
            await rotator.rotate(account, arn, token)
        except asyncio.CancelledError:
            raise  # shutting down: the run stays recorded as "rotating" and resumes at the next start
        except Exception as exc:
            self._failed(account, arn, token, service, _reason(exc))
            return
        self._succeeded(account, arn, token, service)

    def _succeeded(self, account: str, arn: str, token: str, service: str) -> None:
        with self.records.lock:
            secret = self.records.by_arn(account, arn)
            if secret is None or secret.run is None or secret.run.token != token:
                return
            now = self.records.clock()
            secret.run = None
            secret.rotation.last_rotated = now
            secret.last_changed = now
            if secret.rotation.enabled:
                secret.rotation.next_rotation = schedule.next_after(
                    now, every_days=secret.rotation.every_days, schedule=secret.rotation.schedule)
            self.records.save(secret)
        log.info("rotated secret %s", arn)
        for listener in list(self._success_listeners):
            self._notify(listener, service, account, arn)

    def _failed(self, account: str, arn: str, token: str, service: str, reason: str) -> None:
        with self.records.lock:
            secret = self.records.by_arn(account, arn)
            if secret is None or secret.run is None or secret.run.token != token:
                return
            run = secret.run
            run.status = "failed"
            run.attempts += 1
            run.error = reason
            delay = min(self.retry_base * 2 ** (run.attempts - 1), self.retry_max)
            run.retry_at = self.records.clock() + delay
            self.records.save(secret)
        log.warning("rotation of secret %s failed (attempt %d, retry in %.0fs): %s", arn, run.attempts, delay, reason)
        for listener in list(self._failure_listeners):
            self._notify(listener, service, account, arn, reason)

    @staticmethod
    def _notify(listener: Callable[..., None], *args: str) -> None:
        try:
            listener(*args)
        except Exception:  # a listener's bug must not undo the rotation's record
            log.exception("rotation listener failed")

    # --- scheduling ---------------------------------------------------------------------

    async def resume(self) -> int:
        """Hand every run recorded as in progress (the process stopped mid-rotation) back to its rotator
        with the same token. Returns how many were resumed."""
        count = 0
        for secret in self.records.all():
            if secret.run is not None and secret.run.status == "rotating":
                log.info("resuming rotation of secret %s", secret.arn)
                self._spawn(secret.account, secret.arn, secret.run.token)
                count += 1
        return count

    def _due(self, secret: Secret, now: float) -> bool:
        if secret.deleted is not None:
            return False
        run = secret.run
        if run is not None:
            return run.status == "failed" and (run.retry_at is None or run.retry_at <= now)
        rot = secret.rotation
        return rot.enabled and rot.next_rotation is not None and rot.next_rotation <= now

    async def tick(self) -> int:
        """One scheduler pass; returns how many rotations it started."""
        self.records.purge_expired()
        now = self.records.clock()
        started = 0
        for secret in self.records.all():
            if self.running(secret.account, secret.arn) or not self._due(secret, now):
                continue
            try:
                token = self.begin(secret.account, secret.arn)
            except AwsError:
                continue
            self._spawn(secret.account, secret.arn, token)
            started += 1
        return started

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("rotation scheduler pass failed")

    async def start(self) -> None:
        await self.resume()
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="secrets rotation scheduler")

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self, grace: float = 10.0) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
