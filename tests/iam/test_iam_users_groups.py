"""Users, groups, memberships, tags and pagination."""

from __future__ import annotations

import pytest
from iam_harness import ACCOUNT, Env

from auroral.errors import AwsError


def test_create_get_list_update_delete_user(env: Env) -> None:
    user = env.call("CreateUser", {"UserName": "alice", "Path": "/dev/", "Tags": [{"Key": "team", "Value": "db"}]})["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/dev/alice"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 20
    assert user["Tags"] == [{"Key": "team", "Value": "db"}]
    got = env.call("GetUser", {"UserName": "ALICE"})["User"]  # names are case-insensitive
    assert got["UserName"] == "alice"
    assert [u["UserName"] for u in env.call("ListUsers", {"PathPrefix": "/dev/"})["Users"]] == ["alice"]
    assert env.call("ListUsers", {"PathPrefix": "/prod/"})["Users"] == []
    env.call("UpdateUser", {"UserName": "alice", "NewUserName": "alicia", "NewPath": "/ops/"})
    assert env.call("GetUser", {"UserName": "alicia"})["User"]["Arn"].endswith(":user/ops/alicia")
    with pytest.raises(AwsError) as err:
        env.call("GetUser", {"UserName": "alice"})
    assert (err.value.code, err.value.status, err.value.message) == (
        "NoSuchEntity", 404, "The user with name alice cannot be found.")
    env.call("DeleteUser", {"UserName": "alicia"})
    assert env.call("ListUsers")["Users"] == []


def test_duplicate_and_invalid_names(env: Env) -> None:
    env.call("CreateUser", {"UserName": "bob"})
    with pytest.raises(AwsError) as err:
        env.call("CreateUser", {"UserName": "Bob"})
    assert (err.value.code, err.value.status, err.value.message) == (
        "EntityAlreadyExists", 409, "User with name Bob already exists.")
    with pytest.raises(AwsError) as err:
        env.call("CreateUser", {"UserName": "bad name"})
    assert err.value.code == "ValidationError"
    with pytest.raises(AwsError) as err:
        env.call("CreateUser", {"UserName": "x", "Path": "nope"})
    assert err.value.code == "ValidationError"


def test_get_user_without_name_is_the_caller(env: Env) -> None:
    alice = env.make_user("alice", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]})
    assert env.call("GetUser", {}, alice)["User"]["UserName"] == "alice"
    root = env.call("GetUser", {})["User"]
    assert root["Arn"] == f"arn:aws:iam::{ACCOUNT}:root" and root["UserId"] == ACCOUNT


def test_delete_user_conflicts_in_aws_order(env: Env) -> None:
    env.call("CreateUser", {"UserName": "carol"})
    env.call("CreateGroup", {"GroupName": "admins"})
    env.call("AddUserToGroup", {"GroupName": "admins", "UserName": "carol"})
    env.call("AttachUserPolicy", {"UserName": "carol", "PolicyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"})
    env.call("PutUserPolicy", {"UserName": "carol", "PolicyName": "p", "PolicyDocument":
                               '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'})
    key = env.call("CreateAccessKey", {"UserName": "carol"})["AccessKey"]["AccessKeyId"]
    steps = [
        ("Cannot delete entity, must delete access keys first.",
         lambda: env.call("DeleteAccessKey", {"UserName": "carol", "AccessKeyId": key})),
        ("Cannot delete entity, must delete policies first.",
         lambda: env.call("DeleteUserPolicy", {"UserName": "carol", "PolicyName": "p"})),
        ("Cannot delete entity, must detach all policies first.",
         lambda: env.call("DetachUserPolicy", {"UserName": "carol",
                                               "PolicyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"})),
        ("Cannot delete entity, must remove users from group first.",
         lambda: env.call("RemoveUserFromGroup", {"GroupName": "admins", "UserName": "carol"})),
    ]
    for message, fix in steps:
        with pytest.raises(AwsError) as err:
            env.call("DeleteUser", {"UserName": "carol"})
        assert (err.value.code, err.value.status, err.value.message) == ("DeleteConflict", 409, message)
        fix()
    env.call("DeleteUser", {"UserName": "carol"})


def test_groups_and_membership(env: Env) -> None:
    group = env.call("CreateGroup", {"GroupName": "dbas", "Path": "/ops/"})["Group"]
    assert group["GroupId"].startswith("AGPA") and group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/ops/dbas"
    with pytest.raises(AwsError) as err:
        env.call("CreateGroup", {"GroupName": "DBAS"})
    assert err.value.message == "Group with name DBAS already exists."
    env.call("CreateUser", {"UserName": "u1"})
    env.call("CreateUser", {"UserName": "u2"})
    env.call("AddUserToGroup", {"GroupName": "dbas", "UserName": "u1"})
    env.call("AddUserToGroup", {"GroupName": "dbas", "UserName": "u2"})
    env.call("AddUserToGroup", {"GroupName": "dbas", "UserName": "u2"})  # idempotent
    assert [u["UserName"] for u in env.call("GetGroup", {"GroupName": "dbas"})["Users"]] == ["u1", "u2"]
    assert [g["GroupName"] for g in env.call("ListGroupsForUser", {"UserName": "u1"})["Groups"]] == ["dbas"]
    with pytest.raises(AwsError) as err:
        env.call("DeleteGroup", {"GroupName": "dbas"})
    assert err.value.message == "Cannot delete entity, must remove users from group first."
    env.call("RemoveUserFromGroup", {"GroupName": "dbas", "UserName": "u1"})
    env.call("RemoveUserFromGroup", {"GroupName": "dbas", "UserName": "u2"})
    env.call("DeleteGroup", {"GroupName": "dbas"})
    with pytest.raises(AwsError) as err:
        env.call("GetGroup", {"GroupName": "dbas"})
    assert err.value.message == "The group with name dbas cannot be found."


def test_user_tags(env: Env) -> None:
    env.call("CreateUser", {"UserName": "t"})
    env.call("TagUser", {"UserName": "t", "Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]})
    env.call("TagUser", {"UserName": "t", "Tags": [{"Key": "a", "Value": "9"}]})
    assert env.call("ListUserTags", {"UserName": "t"})["Tags"] == [{"Key": "a", "Value": "9"}, {"Key": "b", "Value": "2"}]
    env.call("UntagUser", {"UserName": "t", "TagKeys": ["a"]})
    assert env.call("ListUserTags", {"UserName": "t"})["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(AwsError) as err:
        env.call("TagUser", {"UserName": "t", "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(50)]})
    assert err.value.code == "LimitExceeded"


def test_pagination_with_marker(env: Env) -> None:
    for i in range(7):
        env.call("CreateUser", {"UserName": f"user{i}"})
    seen: list[str] = []
    params: dict[str, object] = {"MaxItems": 3}
    pages = 0
    while True:
        out = env.call("ListUsers", params)
        pages += 1
        seen += [u["UserName"] for u in out["Users"]]
        if not out["IsTruncated"]:
            assert "Marker" not in out
            break
        params = {"MaxItems": 3, "Marker": out["Marker"]}
    assert pages == 3 and seen == [f"user{i}" for i in range(7)]
    # deleting an item between pages neither skips nor repeats the others
    first = env.call("ListUsers", {"MaxItems": 2})
    env.call("DeleteUser", {"UserName": "user1"})
    rest = env.call("ListUsers", {"Marker": first["Marker"]})
    assert [u["UserName"] for u in rest["Users"]] == [f"user{i}" for i in range(2, 7)]
    with pytest.raises(AwsError) as err:
        env.call("ListUsers", {"MaxItems": 0})
    assert err.value.code == "ValidationError"


def test_permissions_boundary_on_user(env: Env) -> None:
    arn = "arn:aws:iam::aws:policy/AmazonRDSReadOnlyAccess"
    user = env.call("CreateUser", {"UserName": "b", "PermissionsBoundary": arn})["User"]
    assert user["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                           "PermissionsBoundaryArn": arn}
    env.call("DeleteUserPermissionsBoundary", {"UserName": "b"})
    assert "PermissionsBoundary" not in env.call("GetUser", {"UserName": "b"})["User"]
    with pytest.raises(AwsError) as err:
        env.call("PutUserPermissionsBoundary", {"UserName": "b", "PermissionsBoundary":
                                                f"arn:aws:iam::{ACCOUNT}:policy/missing"})
    assert err.value.code == "NoSuchEntity"
    assert err.value.message == f"Scope ARN: arn:aws:iam::{ACCOUNT}:policy/missing does not exist or is not attachable."
