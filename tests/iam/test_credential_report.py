"""The credential report's lifetime and columns, on the provider with a controlled clock: kept four hours
(Generate answers COMPLETE and keeps it), then ReportExpired until the next Generate, which takes a new
snapshot; a key's last use shows with its region and service; the CSV never carries a secret."""

from __future__ import annotations

import csv
import io

import pytest
from iam_harness import Env

from auroral.errors import AwsError


def report(env: Env) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(env.call("GetCredentialReport")["Content"].decode())))


def test_lifetime_and_snapshot(env: Env) -> None:
    with pytest.raises(AwsError) as err:
        env.call("GetCredentialReport")
    assert (err.value.code, err.value.status) == ("ReportNotPresent", 410)
    env.call("CreateUser", {"UserName": "u"})
    key = env.call("CreateAccessKey", {"UserName": "u"})["AccessKey"]
    assert env.call("GenerateCredentialReport")["State"] == "STARTED"
    first = env.call("GetCredentialReport")["GeneratedTime"]
    assert [r["user"] for r in report(env)] == ["<root_account>", "u"]  # no root key in this harness
    assert report(env)[0]["access_key_1_active"] == "false"

    env.directory.note_key_used(key["AccessKeyId"], "rds", "eu-west-1", env.clock())
    env.clock.advance(3 * 3600)
    assert env.call("GenerateCredentialReport")["State"] == "COMPLETE"
    assert report(env)[1]["access_key_1_last_used_date"] == "N/A"  # the snapshot is kept
    env.clock.advance(3600)
    with pytest.raises(AwsError) as err:
        env.call("GetCredentialReport")
    assert (err.value.code, err.value.status) == ("ReportExpired", 410)
    assert env.call("GenerateCredentialReport")["State"] == "STARTED"
    out = env.call("GetCredentialReport")
    assert out["GeneratedTime"] > first
    user = report(env)[1]
    assert user["access_key_1_last_used_region"] == "eu-west-1"
    assert user["access_key_1_last_used_service"] == "rds"
    assert key["SecretAccessKey"] not in out["Content"].decode()
