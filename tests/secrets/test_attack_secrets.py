"""Attacks on Secrets Manager through the running server (adversarial review, second pass).

BatchGetSecretValue with ``Filters`` lists the secrets it reads: like ListSecrets it needs
secretsmanager:ListSecrets ("If you use Filters, you must also have secretsmanager:ListSecrets",
BatchGetSecretValue API reference). Otherwise its per-secret errors name every secret matching a
filter — the names a caller denied ListSecrets must not see.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server


def test_batch_get_with_filters_needs_list_secrets(server: Server, make_user: Any) -> None:
    sm = server.client("secretsmanager")
    prefix = f"hidden-{secrets.token_hex(3)}"
    arn = sm.create_secret(Name=f"{prefix}/payroll", SecretString="x")["ARN"]
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:BatchGetSecretValue", "secretsmanager:GetSecretValue"],
         "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": arn}]})
    attacker = server.client("secretsmanager", user.access_key, user.secret_key)
    with pytest.raises(ClientError) as info:
        attacker.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}])
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        attacker.batch_get_secret_value(Filters=[{"Key": "name", "Values": [prefix]}])
    assert info.value.response["Error"]["Code"] == "AccessDeniedException", info.value.response
    # by id it answers for the ids the caller named, as before
    out = attacker.batch_get_secret_value(SecretIdList=[arn])
    assert out["SecretValues"] == [] and out["Errors"][0]["ErrorCode"] == "AccessDeniedException"
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
