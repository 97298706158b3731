"""The ``auroral`` command and state across restarts, on a dedicated server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import new_root_key, start_server, stop_server, wait_healthy


def _auroral(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auroral.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_generated_root_credentials_env_status_audit_down(tmp_path: Path) -> None:
    """Without pinned credentials: generated at first start, kept, printed again by `auroral env`."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AURORAL_")}
    from tests.conftest import free_port

    port = free_port()
    with open(tmp_path / "up.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "auroral.cli", "up", "--data-dir", str(data),
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        lines = dict(
            line.removeprefix("export ").split("=", 1)
            for line in _auroral("env", "--data-dir", str(data), env=env).stdout.splitlines()
        )
        assert lines["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert lines["AWS_ACCESS_KEY_ID"].startswith("AKIA") and len(lines["AWS_ACCESS_KEY_ID"]) == 20
        assert len(lines["AWS_SECRET_ACCESS_KEY"]) == 40
        assert lines["AWS_DEFAULT_REGION"] == "us-east-1"
        import boto3

        sts = boto3.client("sts", endpoint_url=lines["AWS_ENDPOINT_URL"], region_name="us-east-1",
                           aws_access_key_id=lines["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=lines["AWS_SECRET_ACCESS_KEY"])
        account = sts.get_caller_identity()["Account"]
        assert len(account) == 12 and account.isdigit()
        status = _auroral("status", "--data-dir", str(data), env=env)
        assert status.returncode == 0 and "ready" in status.stdout and "iam" in status.stdout
        audit = _auroral("audit", "--data-dir", str(data), env=env)
        assert "GetCallerIdentity" in audit.stdout and "root" in audit.stdout
        # A second server on the same data directory is refused.
        second = _auroral("up", "--data-dir", str(data), "--port", str(free_port()), env=env)
        assert second.returncode == 1 and "another auroral is running" in second.stderr
        down = _auroral("down", "--data-dir", str(data), env=env)
        assert down.returncode == 0, (tmp_path / "up.log").read_text()
        assert proc.wait(timeout=30) == 0, (tmp_path / "up.log").read_text()
        assert _auroral("status", "--data-dir", str(data), env=env).returncode == 1
        # The secret is sealed: not in the store file in plaintext.
        for path in data.rglob("*.sqlite3*"):
            assert lines["AWS_SECRET_ACCESS_KEY"].encode() not in path.read_bytes()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_state_survives_restart(tmp_path: Path) -> None:
    key, secret = new_root_key()
    data = tmp_path / "data"
    server = start_server(data, access_key=key, secret_key=secret, account="210987654321")
    try:
        iam = server.client("iam")
        iam.create_user(UserName="persist", Path="/team/", Tags=[{"Key": "team", "Value": "db"}])
        arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="persist", PolicyArn=arn)
        iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "210987654321"},
                                                    "Action": "sts:AssumeRole"}]}))
        ak = iam.create_access_key(UserName="persist")["AccessKey"]
        user_iam = server.client("iam", access_key=ak["AccessKeyId"], secret_key=ak["SecretAccessKey"])
        user_iam.get_user(UserName="persist")
        with pytest.raises(ClientError):
            user_iam.list_users()
        session = server.client("sts").get_session_token  # root may not; a user's session survives
        del session
        user_creds = server.client("sts", access_key=ak["AccessKeyId"],
                                   secret_key=ak["SecretAccessKey"]).get_session_token()["Credentials"]
    finally:
        stop_server(server)
    server = start_server(data, access_key=key, secret_key=secret, account="210987654321")
    try:
        iam = server.client("iam")
        user = iam.get_user(UserName="persist")["User"]
        assert user["Path"] == "/team/"
        assert iam.list_user_tags(UserName="persist")["Tags"] == [{"Key": "team", "Value": "db"}]
        assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="persist")["AttachedPolicies"]] == [arn]
        assert iam.get_role(RoleName="r")["Role"]["RoleName"] == "r"
        user_iam = server.client("iam", access_key=ak["AccessKeyId"], secret_key=ak["SecretAccessKey"])
        assert user_iam.get_user(UserName="persist")["User"]["UserName"] == "persist"
        with pytest.raises(ClientError):
            user_iam.list_users()
        # (GetSessionToken credentials without MFA may not call IAM; STS tells who they are)
        temp = server.client("sts", access_key=user_creds["AccessKeyId"], secret_key=user_creds["SecretAccessKey"],
                             session_token=user_creds["SessionToken"])
        assert temp.get_caller_identity()["Arn"] == user["Arn"]
        events = server.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])["Events"]
        assert any("persist" in e["CloudTrailEvent"] for e in events)
    finally:
        stop_server(server)
