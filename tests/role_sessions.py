"""A role a test user may assume, and clients for its sessions (with an optional session policy): for the
tests of resource-based policies that name a role or a role session."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys, unique

V = "2012-10-17"
S3_ONLY = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
KMS_ALL = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}


class Role:
    def __init__(self, server: Server, make_user: Any, *, boundary: dict[str, Any] | None = None) -> None:
        self.server = server
        iam = server.client("iam")
        self.name = unique("role")
        self.caller: UserKeys = make_user({"Version": V, "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
        extra: dict[str, Any] = {}
        if boundary is not None:
            arn = iam.create_policy(PolicyName=unique("boundary"), PolicyDocument=json.dumps(boundary))["Policy"]["Arn"]
            extra["PermissionsBoundary"] = arn
        self.arn = iam.create_role(RoleName=self.name, AssumeRolePolicyDocument=json.dumps({
            "Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": self.caller.arn},
                                         "Action": "sts:AssumeRole"}]}), **extra)["Role"]["Arn"]

    def session_arn(self, name: str) -> str:
        return f"arn:aws:sts::{self.server.account}:assumed-role/{self.name}/{name}"

    def client(self, service: str, session_name: str = "s1", policy: dict[str, Any] | None = None) -> Any:
        sts = self.server.client("sts", access_key=self.caller.access_key, secret_key=self.caller.secret_key)
        extra = {"Policy": json.dumps(policy)} if policy is not None else {}
        creds = sts.assume_role(RoleArn=self.arn, RoleSessionName=session_name, **extra)["Credentials"]
        return self.server.client(service, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                                  session_token=creds["SessionToken"])


def denial(exc: pytest.ExceptionInfo[ClientError]) -> str:
    err = exc.value.response
    assert err["Error"]["Code"] == "AccessDeniedException"
    return str(err["Error"]["Message"])
