"""The credential report through a running server with unmodified boto3: none before the first
GenerateCredentialReport (ReportNotPresent, 410), then a CSV with IAM's columns, the root first
(``<root_account>``, its key active) and each user with its keys; a second Generate within four hours
keeps the report (COMPLETE); both actions are authorized by IAM like every other."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, UserKeys, fresh_server

from auroral.iam.credential_report import COLUMNS

ACCOUNT = "135792468013"


def rows(iam: Any) -> list[dict[str, str]]:
    out = iam.get_credential_report()
    assert out["ReportFormat"] == "text/csv"
    text = out["Content"].decode()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


def test_generate_then_get() -> None:
    with fresh_server(ACCOUNT) as srv:
        iam = srv.client("iam")
        with pytest.raises(ClientError) as err:
            iam.get_credential_report()
        assert err.value.response["Error"]["Code"] == "ReportNotPresent"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410

        iam.create_user(UserName="alice")
        key = iam.create_access_key(UserName="alice")["AccessKey"]
        iam.create_user(UserName="bob")
        assert iam.generate_credential_report()["State"] == "STARTED"
        report = rows(iam)
        assert [r["user"] for r in report] == ["<root_account>", "alice", "bob"]
        root, alice, bob = report
        assert root["arn"] == f"arn:aws:iam::{ACCOUNT}:root"
        assert root["password_enabled"] == "not_supported" and root["access_key_1_active"] == "true"
        assert root["access_key_2_active"] == "false" and root["access_key_2_last_rotated"] == "N/A"
        assert alice["arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
        assert alice["access_key_1_active"] == "true" and alice["password_enabled"] == "false"
        assert alice["access_key_1_last_rotated"].startswith(key["CreateDate"].strftime("%Y-%m-%dT%H:%M"))
        assert alice["access_key_1_last_used_date"] == "N/A"
        assert bob["access_key_1_active"] == "false" and bob["mfa_active"] == "false"

        # within four hours the report is kept, not regenerated: a key deactivated since still shows active
        iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")
        assert iam.generate_credential_report()["State"] == "COMPLETE"
        assert rows(iam)[1]["access_key_1_active"] == "true"


def test_authorized_by_iam(server: Server, make_user: Any) -> None:
    denied: UserKeys = make_user()
    iam = server.client("iam", access_key=denied.access_key, secret_key=denied.secret_key)
    for call in (iam.generate_credential_report, iam.get_credential_report):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDenied"
        assert "iam:" in err.value.response["Error"]["Message"]
    allowed: UserKeys = make_user({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["iam:GenerateCredentialReport", "iam:GetCredentialReport"],
        "Resource": "*"}]})
    iam = server.client("iam", access_key=allowed.access_key, secret_key=allowed.secret_key)
    assert iam.generate_credential_report()["State"] in ("STARTED", "COMPLETE")
    assert allowed.name in {r["user"] for r in rows(iam)}
    events = server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "GetCredentialReport"}])["Events"]
    assert events and json.loads(events[0]["CloudTrailEvent"])["readOnly"] is True
