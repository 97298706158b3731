"""What every Secrets Manager handler family shares: secret lookups with AWS's state errors, the
refusal of changes to secrets another service owns, KMS permission checks made on the caller's behalf,
and the pipeline hooks that give authorization the secret's real ARN, tags and condition keys."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AccessDenied, AwsError
from auroral.iam.policy import Policy
from auroral.kms.model import KeyRef
from auroral.regions import partition_of
from auroral.secrets import envelope, errors, views
from auroral.secrets.model import Secret, new_arn, valid_name
from auroral.secrets.records import SecretRecords
from auroral.secrets.rotation import RotationScheduler
from auroral.secrets.vault import Vault

_NO_SECRET = frozenset({"ListSecrets", "GetRandomPassword", "BatchGetSecretValue"})
_PLANNED_ARNS_MAX = 1024


def value_of(params: dict[str, Any]) -> tuple[bytes, bool] | None:
    """The request's secret value as (bytes, binary); InvalidParameterException if both kinds are given."""
    text, blob = params.get("SecretString"), params.get("SecretBinary")
    if text is not None and blob is not None:
        raise errors.invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.")
    if text is not None:
        return str(text).encode(), False
    if blob is not None:
        return bytes(blob), True
    return None


def tags_of(params: dict[str, Any], name: str = "Tags") -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in params.get(name) or []:
        key = str(tag.get("Key", ""))
        if key.lower().startswith("aws:"):
            raise errors.invalid_parameter("Invalid tag key: keys with the prefix aws: are reserved for AWS use.")
        out[key] = str(tag.get("Value", ""))
    return out


def page(items: list[Any], params: dict[str, Any], default: int = 100) -> tuple[list[Any], str | None]:
    """Offset pagination with an opaque NextToken."""
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(base64.b64decode(str(token)).decode())
        except (ValueError, UnicodeDecodeError):
            raise errors.sm_error("InvalidNextTokenException", "The NextToken value is invalid.") from None
    limit = int(params.get("MaxResults") or default)
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return chunk, base64.b64encode(str(start + limit).encode()).decode() if more else None


class SecretsBase:
    service = "secretsmanager"

    def __init__(self, records: SecretRecords, vault: Vault, rotation: RotationScheduler) -> None:
        self.records = records
        self.vault = vault
        self.rotation = rotation
        self.keyring = records.keyring
        # CreateSecret's ARN is drawn while authorizing (its random suffix is part of what policies match)
        # and used by the handler of the same request.
        self._planned_arns: dict[str, str] = {}
        self.compiled_policies: dict[str, Policy] = {}  # resource policies by text

    @property
    def region(self) -> str:
        return self.records.region

    # --- lookups ------------------------------------------------------------------------

    def _find(self, ctx: RequestContext, secret_id: Any) -> Secret:
        secret = self.records.find(ctx.account, str(secret_id or ""))
        if secret is None:
            raise errors.not_found()
        ctx.record_resource("AWS::SecretsManager::Secret", secret.arn)
        return secret

    def _live(self, ctx: RequestContext, secret_id: Any) -> Secret:
        secret = self._find(ctx, secret_id)
        if secret.deleted is not None:
            raise errors.marked_for_deletion()
        return secret

    @staticmethod
    def _not_owned(secret: Secret) -> None:
        if secret.owning_service:
            raise errors.managed_by(secret.arn, secret.owning_service)

    def _planned_arn(self, ctx: RequestContext, name: str) -> str:
        arn = self._planned_arns.pop(ctx.request_id, None)
        return arn or new_arn(self.region, ctx.account, name)

    def _filtered(self, ctx: RequestContext, params: dict[str, Any]) -> list[Secret]:
        filters = list(params.get("Filters") or [])
        views.check_filters(filters)
        planned = bool(params.get("IncludePlannedDeletion"))
        secrets = [s for s in self.records.all(ctx.account)
                   if (planned or s.deleted is None) and views.matches(s, filters, self.region)]
        sort_by = params.get("SortBy") or "created-date"

        def sort_key(s: Secret) -> Any:
            if sort_by == "name":
                return s.name
            if sort_by == "last-accessed-date":
                return s.last_accessed or 0.0
            if sort_by == "last-changed-date":
                return s.last_changed
            return s.created

        secrets.sort(key=sort_key, reverse=params.get("SortOrder") == "desc")
        return secrets

    # --- KMS on the caller's behalf -----------------------------------------------------

    def _kms_check(self, ctx: RequestContext, action: str, key: KeyRef, arn: str, version_id: str) -> None:
        """Customer keys need the caller's own permission (key policy, IAM, grants) via Secrets Manager."""
        try:
            self.keyring.check(ctx, action, key, via_service="secretsmanager",
                               encryption_context=envelope.context(arn, version_id))
        except AccessDenied:
            raise errors.kms_access_denied() from None

    def _resolve_key(self, ctx: RequestContext, kms_key_id: Any) -> tuple[KeyRef, bool]:
        try:
            return self.records.resolve_key(ctx.account, str(kms_key_id) if kms_key_id else None)
        except AccessDenied:
            raise
        except AwsError as err:
            raise errors.encryption_failure(err.message) from None

    # --- pipeline hooks -----------------------------------------------------------------

    def resolve_resource(self, ctx: RequestContext, kind: str, value: Any, params: Mapping[str, Any]) -> list[str]:
        """The secret's full ARN (with its random suffix, as AWS authorizes it) for a SecretId given as
        a name, a partial ARN or a full ARN (``SecretRecords.find``, as the handlers); for CreateSecret,
        the ARN the new secret will get. A SecretId that names no secret stays as given (as an ARN if it
        is one): the handler answers ResourceNotFoundException."""
        prefix = f"arn:{partition_of(ctx.region)}:secretsmanager:{ctx.region}:{ctx.account}:secret:"
        if kind == "new-secret":
            name = str(value or "")
            if not valid_name(name):
                raise errors.invalid_parameter(
                    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
                    "following: -/_+=.@!")
            if len(self._planned_arns) > _PLANNED_ARNS_MAX:
                self._planned_arns.clear()
            arn = new_arn(self.region, ctx.account, name)
            self._planned_arns[ctx.request_id] = arn
            return [arn]
        if kind != "secret":
            raise KeyError(kind)
        if not value:
            return [prefix + "*"]
        text = str(value)
        secret = self.records.find(ctx.account, text)
        if secret is not None:
            return [secret.arn]
        return [text if text.startswith("arn:") else prefix + text]

    def resource_tags(self, account: str, arn: str) -> dict[str, str]:
        secret = self.records.by_arn(account, arn)
        return secret.tag_map if secret is not None else {}

    def authz_keys(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        secret_id = params.get("SecretId")
        if secret_id and operation not in _NO_SECRET:
            secret = self.records.find(ctx.account, str(secret_id))
            if secret is not None:
                keys["secretsmanager:SecretId"] = secret.arn
                for k, v in secret.tag_map.items():
                    keys[f"secretsmanager:ResourceTag/{k}"] = v
        if operation == "GetSecretValue" and not params.get("VersionStage") and not params.get("VersionId"):
            keys["secretsmanager:VersionStage"] = "AWSCURRENT"
        if operation == "PutResourcePolicy":
            keys["secretsmanager:BlockPublicPolicy"] = "true" if params.get("BlockPublicPolicy") else "false"
        if operation == "DeleteSecret":
            keys["secretsmanager:ForceDeleteWithoutRecovery"] = (
                "true" if params.get("ForceDeleteWithoutRecovery") else "false")
            if params.get("RecoveryWindowInDays") is not None:
                keys["secretsmanager:RecoveryWindowInDays"] = str(params["RecoveryWindowInDays"])
        if operation == "RotateSecret":
            rules = params.get("RotationRules") or {}
            keys["secretsmanager:ModifyRotationRules"] = "true" if rules else "false"
            keys["secretsmanager:RotateImmediately"] = "false" if params.get("RotateImmediately") is False else "true"
        return keys
