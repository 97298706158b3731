"""Secret values and versions: GetSecretValue, BatchGetSecretValue, PutSecretValue, ListSecretVersionIds,
UpdateSecretVersionStage, GetRandomPassword.

Reading a version opens its envelope (``envelope.open_``); with a customer key the caller also needs
kms:Decrypt on it, and creating a version kms:GenerateDataKey (checked via Secrets Manager). Staging
labels are unique per secret; moving AWSCURRENT labels the version that had it AWSPREVIOUS.
Values only ever leave through the response of these calls, never through ``ctx.response_elements``.
"""

from __future__ import annotations

import uuid
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AccessDenied, AwsError
from auroral.secrets import errors, views
from auroral.secrets.base import SecretsBase, page, value_of
from auroral.secrets.model import CURRENT, Secret, Version
from auroral.secrets.password import random_password


class ValueOperations(SecretsBase):
    def _version(self, secret: Secret, version_id: Any, stage: Any) -> Version:
        if version_id:
            version = secret.versions.get(str(version_id))
            if version is None:
                raise errors.no_value_for_version(str(version_id))
            if stage and str(stage) not in version.stages:
                raise errors.stage_version_mismatch()
            return version
        label = str(stage or CURRENT)
        found = secret.version_with(label)
        if found is None:
            raise errors.no_value_for_stage(label)
        return found

    def _read(self, ctx: RequestContext, secret: Secret, version_id: Any, stage: Any) -> dict[str, Any]:
        version = self._version(secret, version_id, stage)
        if secret.customer_key:
            self._kms_check(ctx, "kms:Decrypt", self.records.key_of(secret), secret.arn, version.version_id)
        value = self.records.open(secret, version)
        self._note_access(secret, version)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id,
                               "VersionStages": list(version.stages), "CreatedDate": version.created}
        if version.binary:
            out["SecretBinary"] = value
        else:
            out["SecretString"] = value.decode()
        return out

    def _note_access(self, secret: Secret, version: Version) -> None:
        # LastAccessedDate has a day's resolution: write only when the day changes.
        today = views.day_of(self.records.clock())
        if views.day_of(secret.last_accessed) == today and views.day_of(version.last_accessed) == today:
            return
        with self.records.lock:
            fresh = self.records.by_arn(secret.account, secret.arn)
            if fresh is None or version.version_id not in fresh.versions:
                return
            now = self.records.clock()
            fresh.last_accessed = now
            fresh.versions[version.version_id].last_accessed = now
            self.records.save(fresh)

    def GetSecretValue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        secret = self._live(ctx, params.get("SecretId"))
        return self._read(ctx, secret, params.get("VersionId"), params.get("VersionStage"))

    def BatchGetSecretValue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ids = params.get("SecretIdList")
        filters = params.get("Filters")
        if (ids is None) == (filters is None):
            raise errors.invalid_parameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.")
        out: dict[str, Any] = {"SecretValues": [], "Errors": []}
        if ids is not None:
            if params.get("MaxResults") is not None:
                raise errors.invalid_parameter("'MaxResults' is only valid together with 'Filters'.")
            targets: list[tuple[str, Secret | None]] = [
                (str(i), self.records.find(ctx.account, str(i))) for i in ids]
        else:
            # "If you use Filters, you must also have secretsmanager:ListSecrets" (API reference): the
            # answer names every secret that matches.
            ctx.authorize("secretsmanager:ListSecrets", ["*"])
            secrets = self._filtered(ctx, {"Filters": filters})
            chunk, token = page(secrets, params, default=20)
            targets = [(s.arn, s) for s in chunk]
            if token:
                out["NextToken"] = token
        for secret_id, secret in targets:
            try:
                if secret is None:
                    raise errors.not_found()
                if secret.deleted is not None:
                    raise errors.marked_for_deletion()
                ctx.authorize("secretsmanager:GetSecretValue", [secret.arn], {
                    "secretsmanager:SecretId": secret.arn, "secretsmanager:VersionStage": CURRENT,
                    **{f"aws:ResourceTag/{k}": v for k, v in secret.tags},
                    **{f"secretsmanager:ResourceTag/{k}": v for k, v in secret.tags}})
                out["SecretValues"].append(self._read(ctx, secret, None, None))
            except AwsError as err:
                code = "AccessDeniedException" if isinstance(err, AccessDenied) else err.code
                out["Errors"].append({"SecretId": secret_id, "ErrorCode": code, "Message": err.message})
        return out

    def PutSecretValue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        value = value_of(params)
        if value is None:
            raise errors.invalid_request("You must provide either SecretString or SecretBinary.")
        stages = [str(s) for s in params.get("VersionStages") or [CURRENT]]
        token = str(params.get("ClientRequestToken") or uuid.uuid4())
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            self._not_owned(secret)
            existing = secret.versions.get(token)
            if existing is not None:
                if self.records.open(secret, existing) != value[0] or existing.binary != value[1]:
                    raise errors.version_exists()
                return {"ARN": secret.arn, "Name": secret.name, "VersionId": token,
                        "VersionStages": list(existing.stages)}
            if secret.customer_key:
                self._kms_check(ctx, "kms:GenerateDataKey", self.records.key_of(secret), secret.arn, token)
            version = self.records.new_version(secret, token, value[0], value[1], stages)
            secret.last_changed = self.records.clock()
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name, "VersionId": token, "VersionStages": list(version.stages)}

    def ListSecretVersionIds(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        secret = self._find(ctx, params.get("SecretId"))
        versions = sorted(secret.versions.values(), key=lambda v: v.created, reverse=True)
        if not params.get("IncludeDeprecated"):
            versions = [v for v in versions if v.stages]
        chunk, token = page(versions, params)
        out: dict[str, Any] = {"Versions": [views.version_entry(v) for v in chunk], "ARN": secret.arn,
                               "Name": secret.name}
        if token:
            out["NextToken"] = token
        return out

    def UpdateSecretVersionStage(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stage = str(params["VersionStage"])
        remove_from, move_to = params.get("RemoveFromVersionId"), params.get("MoveToVersionId")
        with self.records.lock:
            secret = self._live(ctx, params.get("SecretId"))
            self._not_owned(secret)
            holder = secret.version_with(stage)
            for vid in (remove_from, move_to):
                if vid and vid not in secret.versions:
                    raise errors.invalid_parameter(f"The version {vid} doesn't exist for the secret {secret.name}.")
            if remove_from and (holder is None or holder.version_id != remove_from):
                raise errors.invalid_parameter(f"The staging label {stage} isn't attached to version {remove_from}.")
            if move_to:
                if holder is not None and holder.version_id not in (remove_from, move_to):
                    raise errors.invalid_parameter(
                        f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently "
                        f"attached to version {holder.version_id}, so you must explicitly reference that version "
                        "in RemoveFromVersionId.")
                secret.attach(str(move_to), stage)
            elif remove_from:
                if stage == CURRENT:
                    raise errors.invalid_parameter(
                        "You can only move staging label AWSCURRENT to a different secret version. It can't be "
                        "completely removed.")
                secret.detach(str(remove_from), stage)
            secret.last_changed = self.records.clock()
            self.records.save(secret)
            return {"ARN": secret.arn, "Name": secret.name}

    def GetRandomPassword(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        password = random_password(
            int(params.get("PasswordLength") or 32),
            exclude_characters=str(params.get("ExcludeCharacters") or ""),
            exclude_numbers=bool(params.get("ExcludeNumbers")),
            exclude_punctuation=bool(params.get("ExcludePunctuation")),
            exclude_uppercase=bool(params.get("ExcludeUppercase")),
            exclude_lowercase=bool(params.get("ExcludeLowercase")),
            include_space=bool(params.get("IncludeSpace")),
            require_each_included_type=params.get("RequireEachIncludedType") is not False,
        )
        return {"RandomPassword": password}
