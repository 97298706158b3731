"""RotateSecret and CancelRotateSecret.

Secrets owned by a service that registered a Rotator (RDS) rotate through it ("managed rotation": no
Lambda ARN, and one given is refused). Other secrets need a RotationLambdaARN, as in AWS; auroral
stores it and reports it, but cannot invoke Lambda: their rotations are recorded as failed with that
reason. ``RotateImmediately`` (default true) starts a rotation now and answers its token as VersionId;
otherwise the first rotation waits for the schedule.
"""

from __future__ import annotations

import uuid
from typing import Any

from auroral.api.context import RequestContext
from auroral.secrets import errors, schedule
from auroral.secrets.base import SecretsBase


class RotationOperations(SecretsBase):
    def RotateSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        lambda_arn = params.get("RotationLambdaARN")
        rules: dict[str, Any] = dict(params.get("RotationRules") or {})
        days, expr = rules.get("AutomaticallyAfterDays"), rules.get("ScheduleExpression")
        if days is not None and expr:
            raise errors.invalid_parameter(
                "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.")
        if days is not None and not 1 <= int(days) <= 1000:
            raise errors.invalid_parameter("AutomaticallyAfterDays must be between 1 and 1000.")
        if expr:
            try:
                schedule.validate(str(expr))
            except schedule.ScheduleError as exc:
                raise errors.invalid_parameter(f"Invalid ScheduleExpression {expr}: {exc}") from None
        immediately = params.get("RotateImmediately") is not False
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            if secret.owning_service and lambda_arn:
                raise errors.managed_by(secret.arn, secret.owning_service)
            if not secret.owning_service and not lambda_arn and not secret.rotation.lambda_arn:
                raise errors.no_lambda()
            if secret.run is not None and self.rotation.running(ctx.account, secret.arn):
                raise errors.rotation_in_progress()
            if lambda_arn:
                secret.rotation.lambda_arn = str(lambda_arn)
            if rules:
                self.vault.configure_rotation(secret, every_days=int(days) if days is not None else None,
                                              schedule_expression=str(expr) if expr else None,
                                              duration=rules.get("Duration"))
            else:
                secret.rotation.enabled = True
            if not immediately and secret.rotation.next_rotation is None:
                secret.rotation.next_rotation = schedule.next_after(
                    self.records.clock(), every_days=secret.rotation.every_days, schedule=secret.rotation.schedule)
            self.records.save(secret)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if immediately:
            token = str(params.get("ClientRequestToken") or uuid.uuid4())
            out["VersionId"] = self.rotation.rotate_now(ctx, secret.arn, token)
        return out

    def CancelRotateSecret(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        secret = self._live(ctx, params.get("SecretId"))
        self._not_owned(secret)
        token = self.rotation.cancel(ctx.account, secret.arn)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if token:
            out["VersionId"] = token
        return out
