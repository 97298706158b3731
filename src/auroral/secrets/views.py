"""Secrets as the API shows them (DescribeSecret, ListSecrets entries, ListSecretVersionIds), and
ListSecrets' filters. Views never touch values: only metadata leaves through here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from auroral.secrets import errors
from auroral.secrets.model import Secret, Version

FILTER_KEYS = ("description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all")


def day_of(ts: float | None) -> float | None:
    """LastAccessedDate is kept to the day (midnight UTC), as Secrets Manager reports it."""
    if ts is None:
        return None
    d = dt.datetime.fromtimestamp(ts, dt.UTC).date()
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()


def _rotation(secret: Secret) -> dict[str, Any]:
    rot = secret.rotation
    out: dict[str, Any] = {}
    configured = rot.enabled or rot.lambda_arn or rot.every_days or rot.schedule
    if configured:
        out["RotationEnabled"] = rot.enabled
    if rot.lambda_arn:
        out["RotationLambdaARN"] = rot.lambda_arn
    rules: dict[str, Any] = {}
    if rot.every_days:
        rules["AutomaticallyAfterDays"] = rot.every_days
    if rot.schedule:
        rules["ScheduleExpression"] = rot.schedule
    if rot.duration:
        rules["Duration"] = rot.duration
    if rules:
        out["RotationRules"] = rules
    if rot.last_rotated is not None:
        out["LastRotatedDate"] = rot.last_rotated
    if rot.enabled and rot.next_rotation is not None:
        out["NextRotationDate"] = rot.next_rotation
    return out


def _common(secret: Secret, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if secret.description:
        out["Description"] = secret.description
    if secret.customer_key:
        out["KmsKeyId"] = secret.kms_key_arn
    out.update(_rotation(secret))
    out["LastChangedDate"] = secret.last_changed
    if secret.last_accessed is not None:
        out["LastAccessedDate"] = day_of(secret.last_accessed)
    if secret.deleted is not None:
        out["DeletedDate"] = secret.deleted
    if secret.tags:
        out["Tags"] = [{"Key": k, "Value": v} for k, v in secret.tags]
    if secret.owning_service:
        out["OwningService"] = secret.owning_service
    out["CreatedDate"] = secret.created
    out["PrimaryRegion"] = region
    return out


def describe(secret: Secret, region: str) -> dict[str, Any]:
    out = _common(secret, region)
    if "RotationEnabled" not in out:
        out["RotationEnabled"] = False
    out["VersionIdsToStages"] = secret.stage_map()
    return out


def list_entry(secret: Secret, region: str) -> dict[str, Any]:
    out = _common(secret, region)
    out["SecretVersionsToStages"] = secret.stage_map()
    return out


def version_entry(version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {"VersionId": version.version_id, "CreatedDate": version.created,
                           "KmsKeyIds": [version.kms_key_arn]}
    if version.stages:
        out["VersionStages"] = list(version.stages)
    if version.last_accessed is not None:
        out["LastAccessedDate"] = day_of(version.last_accessed)
    return out


# --- ListSecrets filters ------------------------------------------------------------------


def _fields(secret: Secret, key: str, region: str) -> list[str]:
    if key == "name":
        return [secret.name]
    if key == "description":
        return [secret.description]
    if key == "tag-key":
        return [k for k, _ in secret.tags]
    if key == "tag-value":
        return [v for _, v in secret.tags]
    if key == "primary-region":
        return [region]
    if key == "owning-service":
        return [secret.owning_service or ""]
    return [secret.name, secret.description, *[k for k, _ in secret.tags], *[v for _, v in secret.tags]]


def check_filters(filters: list[dict[str, Any]]) -> None:
    for f in filters:
        if f.get("Key") not in FILTER_KEYS:
            raise errors.invalid_parameter(f"Invalid filter key: {f.get('Key')}")


def matches(secret: Secret, filters: list[dict[str, Any]], region: str) -> bool:
    """Every filter must match; within one, any value. Values are prefix matches (case-insensitive for
    "all"); a leading "!" negates a value."""
    for f in filters:
        key = str(f.get("Key"))
        fields = _fields(secret, key, region)
        if key == "all":
            fields = [x.lower() for x in fields]
        hit = False
        for raw in f.get("Values") or []:
            value = str(raw)
            negate = value.startswith("!")
            if negate:
                value = value[1:]
            if key == "all":
                value = value.lower()
            found = any(x.startswith(value) for x in fields)
            if found != negate:
                hit = True
                break
        if not hit:
            return False
    return True
