"""Access keys, root credentials, persistence across restarts, and secrets at rest."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from iam_harness import ACCOUNT, Env, allow, trust

from auroral.errors import AwsError


def test_access_key_lifecycle(env: Env) -> None:
    env.call("CreateUser", {"UserName": "k"})
    key = env.call("CreateAccessKey", {"UserName": "k"})["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active" and key["UserName"] == "k"
    env.call("CreateAccessKey", {"UserName": "k"})
    with pytest.raises(AwsError) as err:
        env.call("CreateAccessKey", {"UserName": "k"})
    assert (err.value.code, err.value.status, err.value.message) == (
        "LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    meta = env.call("ListAccessKeys", {"UserName": "k"})["AccessKeyMetadata"]
    assert len(meta) == 2 and all("SecretAccessKey" not in m for m in meta)
    signing, principal = env.directory.lookup_credentials(key["AccessKeyId"]) or (None, None)
    assert signing is not None and principal is not None
    assert signing.secret_access_key == key["SecretAccessKey"] and signing.session_token is None
    assert principal.arn == f"arn:aws:iam::{ACCOUNT}:user/k" and principal.kind == "user"
    env.call("UpdateAccessKey", {"UserName": "k", "AccessKeyId": key["AccessKeyId"], "Status": "Inactive"})
    assert env.directory.lookup_credentials(key["AccessKeyId"]) is None  # SigV4 answers InvalidClientTokenId
    env.call("UpdateAccessKey", {"UserName": "k", "AccessKeyId": key["AccessKeyId"], "Status": "Active"})
    assert env.directory.lookup_credentials(key["AccessKeyId"]) is not None
    env.call("DeleteAccessKey", {"UserName": "k", "AccessKeyId": key["AccessKeyId"]})
    assert env.directory.lookup_credentials(key["AccessKeyId"]) is None
    with pytest.raises(AwsError) as err:
        env.call("DeleteAccessKey", {"UserName": "k", "AccessKeyId": key["AccessKeyId"]})
    assert (err.value.code, err.value.message) == (
        "NoSuchEntity", f"The Access Key with id {key['AccessKeyId']} cannot be found.")


def test_access_key_last_used_is_throttled(env: Env) -> None:
    env.call("CreateUser", {"UserName": "k"})
    key_id = env.call("CreateAccessKey", {"UserName": "k"})["AccessKey"]["AccessKeyId"]
    assert env.call("GetAccessKeyLastUsed", {"AccessKeyId": key_id}) == {
        "UserName": "k", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
    t0 = env.clock()
    env.directory.note_key_used(key_id, "rds", "eu-west-1", t0)
    env.directory.note_key_used(key_id, "iam", "us-east-1", t0 + timedelta(seconds=10))
    last = env.call("GetAccessKeyLastUsed", {"AccessKeyId": key_id})["AccessKeyLastUsed"]
    assert last == {"LastUsedDate": t0 + timedelta(seconds=10), "ServiceName": "iam", "Region": "us-east-1"}
    # only the first use within the minute was written to the store
    reopened = env.reopen()
    last = reopened.call("GetAccessKeyLastUsed", {"AccessKeyId": key_id})["AccessKeyLastUsed"]
    assert last["ServiceName"] == "rds"


def test_root_credentials_generated_then_pinned(env: Env) -> None:
    key_id, secret = env.directory.ensure_root(None, None)
    assert key_id.startswith("AKIA") and len(key_id) == 20 and len(secret) == 40
    assert env.directory.ensure_root(None, None) == (key_id, secret)  # stable
    _, root = env.directory.lookup_credentials(key_id) or (None, None)
    assert root is not None and root.is_root and root.arn == f"arn:aws:iam::{ACCOUNT}:root" and root.user_id == ACCOUNT
    pinned = ("AKIAPINNEDPINNED0001", "s" * 40)
    assert env.directory.ensure_root(*pinned) == pinned
    assert env.directory.lookup_credentials(key_id) is None  # pinning replaces the previous root key
    reopened = env.reopen()
    assert reopened.directory.ensure_root(None, None) == pinned


def test_state_survives_restart(env: Env) -> None:
    env.call("CreateUser", {"UserName": "alice", "Tags": [{"Key": "team", "Value": "db"}]})
    env.call("CreateGroup", {"GroupName": "g"})
    env.call("AddUserToGroup", {"GroupName": "g", "UserName": "alice"})
    arn = env.call("CreatePolicy", {"PolicyName": "p", "PolicyDocument": json.dumps(allow("rds:*"))})["Policy"]["Arn"]
    env.call("AttachGroupPolicy", {"GroupName": "g", "PolicyArn": arn})
    env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"AWS": ACCOUNT})})
    env.call("CreateServiceLinkedRole", {"AWSServiceName": "rds.amazonaws.com"})
    key = env.call("CreateAccessKey", {"UserName": "alice"})["AccessKey"]
    before = env.call("GetAccountAuthorizationDetails")
    reopened = env.reopen()
    assert reopened.call("GetAccountAuthorizationDetails") == before
    signing, principal = reopened.directory.lookup_credentials(key["AccessKeyId"]) or (None, None)
    assert signing is not None and signing.secret_access_key == key["SecretAccessKey"]
    assert principal is not None and principal.tags == {"team": "db"}
    identity, boundary, session = reopened.directory.policies_for(principal)
    assert len(identity) == 1 and boundary is None and session is None
    reopened.authorizer.authorize(reopened.ctx(principal), "rds:CreateDBCluster", ["*"])


def test_no_plaintext_secrets_in_the_database(env: Env) -> None:
    env.call("CreateUser", {"UserName": "alice"})
    key = env.call("CreateAccessKey", {"UserName": "alice"})["AccessKey"]
    _, root_secret = env.directory.ensure_root(None, None)
    env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})})
    alice = env.principal_for(key["AccessKeyId"])
    creds = env.call("AssumeRole", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "RoleSessionName": "sess"}, alice)[
        "Credentials"]
    env.store.close()
    raw = b"".join(p.read_bytes() for p in env.path.parent.iterdir() if p.name.startswith(env.path.name))
    for secret in (key["SecretAccessKey"], root_secret, creds["SecretAccessKey"], creds["SessionToken"][:40]):
        assert secret.encode() not in raw
    assert key["AccessKeyId"].encode() in raw  # the ids are stored, so the check above is meaningful
    env.store = type(env.store)(env.path)  # for the fixture's close()
