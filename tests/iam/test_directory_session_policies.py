"""``Directory.policies_for`` never lets a session policy that no longer parses widen a session's access:
an empty list of session policies would mean "no session policy" to the evaluator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from auroral.api.context import Principal
from auroral.crypto import Sealer
from auroral.iam.directory import Directory
from auroral.iam.policy import AuthzRequest, Decision, evaluate, parse_policy
from auroral.store import Store

ACCOUNT = "111122223333"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Directory]:
    store = Store(tmp_path / "auroral.db")
    yield Directory(store, Sealer(os.urandom(32)), ACCOUNT)
    store.close()


def session_principal(*documents: str) -> Principal:
    return Principal(ACCOUNT, SESSION, "assumed-role", "AROAEXAMPLE:s1", "app", session_name="s1",
                     session_policies=documents, session_policy_given=True)


def test_unparsable_session_policy_allows_nothing(directory: Directory) -> None:
    _, _, session = directory.policies_for(session_principal('{"Statement": ['))
    assert session  # not "no session policy"
    resource = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}, "Action": "*",
         "Resource": "*"}]}, kind="resource")
    request = AuthzRequest("secretsmanager:GetSecretValue", "*", {}, SESSION, ACCOUNT)
    assert evaluate(request, [], session=session, resource_policy=resource).decision is not Decision.ALLOW


def test_parsable_session_policies_are_kept(directory: Directory) -> None:
    allow = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    _, _, session = directory.policies_for(session_principal(allow, '{"Statement": ['))
    assert session is not None and len(session) == 1
    request = AuthzRequest("s3:GetObject", "*", {}, SESSION, ACCOUNT)
    identity = [parse_policy(allow)]
    assert evaluate(request, identity, session=session).decision is Decision.ALLOW
