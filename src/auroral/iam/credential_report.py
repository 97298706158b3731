"""The account's credential report: GenerateCredentialReport and GetCredentialReport.

A report is a CSV snapshot of the root user and every IAM user's credentials (IAM User Guide,
"Generate credential reports for your AWS account"), which auditors and scanners (Prowler's
``iam_no_root_access_key``, CIS checks) read instead of listing each user's keys. It is taken
whole when generated and kept, as IAM does, for four hours: a Generate within that time answers
COMPLETE and keeps the report; after it, GetCredentialReport answers ReportExpired until the next
Generate. auroral builds the report synchronously, so the first Generate answers STARTED and the
report is already downloadable (IAM's may still be ReportInProgress then; callers poll either way).

The report lives in memory only: it is derived data, holds no secret, and a restarted server
answers ReportNotPresent until the next Generate, which a caller must be ready for anyway.

auroral has no console passwords, MFA devices or signing certificates, so those columns say
``false`` / ``N/A`` for users; the root's password columns say ``not_supported``, as IAM's do.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError
from auroral.iam.base import IamBase
from auroral.iam.model import AccessKey

REPORT_LIFETIME = timedelta(hours=4)
ROOT_USER = "<root_account>"
COLUMNS = (
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active",
    "access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date",
    "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service",
    "cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated",
)  # fmt: skip
NA = "N/A"


@dataclass(frozen=True)
class CredentialReport:
    generated: datetime
    content: bytes


def _iso(when: datetime) -> str:
    """ISO 8601 as IAM writes it in the report: ``2026-12-06T22:52:57+00:00``."""
    return when.replace(microsecond=0).isoformat()


def _key_columns(key: AccessKey | None) -> list[str]:
    if key is None:
        return ["false", NA, NA, NA, NA]
    used = key.last_used is not None
    return [
        "true" if key.status == "Active" else "false",
        _iso(key.created),
        _iso(key.last_used) if key.last_used is not None else NA,
        (key.last_region or NA) if used else NA,
        (key.last_service or NA) if used else NA,
    ]


def _keys(keys: list[AccessKey]) -> list[str]:
    """Columns of the first two keys, oldest first (a user has at most two)."""
    ordered: list[AccessKey | None] = [*sorted(keys, key=lambda k: (k.created, k.key_id))[:2], None, None]
    return [*_key_columns(ordered[0]), *_key_columns(ordered[1])]


class CredentialReportOperations(IamBase):
    _credential_report: CredentialReport | None = None

    def _build_report(self, now: datetime) -> CredentialReport:
        d = self.directory
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        with d.lock:
            root_keys = list(d.root_keys.values())
            users = sorted(d.users.values(), key=lambda u: u.name.lower())
            user_keys = {u.name.lower(): [k for k in d.access_keys.values() if k.user.lower() == u.name.lower()]
                         for u in users}
        # Unconfirmed: IAM writes the account's creation time; auroral's account is as old as its first
        # root key (the oldest one left, else the report's own time).
        root_created = min((k.created for k in root_keys), default=now)
        writer.writerow([ROOT_USER, f"arn:aws:iam::{d.account}:root", _iso(root_created),
                         "not_supported", NA, "not_supported", "not_supported", "false",
                         *_keys(root_keys), "false", NA, "false", NA])
        for user in users:
            writer.writerow([user.name, user.arn(d.account), _iso(user.created), "false", NA, NA, NA, "false",
                             *_keys(user_keys[user.name.lower()]), "false", NA, "false", NA])
        return CredentialReport(now, out.getvalue().encode())

    def GenerateCredentialReport(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        current = self._credential_report
        if current is not None and ctx.time - current.generated < REPORT_LIFETIME:
            return {"State": "COMPLETE"}
        self._credential_report = self._build_report(ctx.time)
        return {"State": "STARTED", "Description": "No report exists. Starting a new report generation task"}

    def GetCredentialReport(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        report = self._credential_report
        # Unconfirmed messages (the codes and statuses are the API reference's).
        if report is None:
            raise AwsError("ReportNotPresent", "Credential report not present. Generate one with "
                           "GenerateCredentialReport.", 410)
        if ctx.time - report.generated >= REPORT_LIFETIME:
            raise AwsError("ReportExpired", "The credential report has expired. Generate a new one with "
                           "GenerateCredentialReport.", 410)
        return {"Content": report.content, "ReportFormat": "text/csv", "GeneratedTime": report.generated}
