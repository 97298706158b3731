"""Secrets Manager end to end: unmodified boto3 against the session server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys, unique


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def message(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Message"])


@pytest.fixture
def sm(server: Server) -> Any:
    return server.client("secretsmanager")


def test_create_get_put_versions(sm: Any) -> None:
    name = unique("app/db")
    created = sm.create_secret(Name=name, SecretString='{"password": "one"}', Description="d",
                               Tags=[{"Key": "team", "Value": "a"}])
    arn = created["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-") and len(arn) == len(
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-") + 6
    v1 = created["VersionId"]
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == '{"password": "one"}' and got["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=arn)["VersionId"] == v1
    assert sm.get_secret_value(SecretId=arn[:-7])["VersionId"] == v1  # partial ARN

    v2 = sm.put_secret_value(SecretId=name, SecretBinary=b"\x00\x01two")["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01two"
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["VersionId"] == v1 and prev["SecretString"] == '{"password": "one"}'
    with pytest.raises(ClientError) as err:
        sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSCURRENT")
    assert code(err) == "InvalidRequestException"

    desc = sm.describe_secret(SecretId=name)
    assert desc["VersionIdsToStages"] == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert desc["Description"] == "d" and desc["Tags"] == [{"Key": "team", "Value": "a"}]
    assert "KmsKeyId" not in desc and desc["RotationEnabled"] is False
    assert desc["LastAccessedDate"].hour == 0
    ids = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert {v["VersionId"] for v in ids} == {v1, v2}

    # idempotent retry with the same token and value; a different value is refused
    token = "t" * 32
    sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    with pytest.raises(ClientError) as err:
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken=token)
    assert code(err) == "ResourceExistsException"

    # staging labels
    sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", MoveToVersionId=v1)
    with pytest.raises(ClientError) as err:
        sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", MoveToVersionId=v2)
    assert code(err) == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", MoveToVersionId=v2, RemoveFromVersionId=v1)
    assert "MINE" in sm.get_secret_value(SecretId=name, VersionId=v2)["VersionStages"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1,
                                   RemoveFromVersionId=token)
    assert sm.get_secret_value(SecretId=name)["VersionId"] == v1
    with pytest.raises(ClientError) as err:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v1)
    assert code(err) == "InvalidParameterException"

    upd = sm.update_secret(SecretId=name, Description="new", SecretString="four")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "four"
    assert sm.get_secret_value(SecretId=name)["VersionId"] == upd["VersionId"]
    assert sm.describe_secret(SecretId=name)["Description"] == "new"


def test_errors(sm: Any) -> None:
    name = unique("err")
    with pytest.raises(ClientError) as err:
        sm.get_secret_value(SecretId=name)
    assert code(err) == "ResourceNotFoundException"
    assert message(err) == "Secrets Manager can't find the specified secret."
    sm.create_secret(Name=name)
    with pytest.raises(ClientError) as err:
        sm.create_secret(Name=name, SecretString="x")
    assert code(err) == "ResourceExistsException"
    assert message(err) == f"The operation failed because the secret {name} already exists."
    with pytest.raises(ClientError) as err:
        sm.get_secret_value(SecretId=name)
    assert code(err) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        sm.create_secret(Name=unique("both"), SecretString="x", SecretBinary=b"y")
    assert code(err) == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        sm.create_secret(Name="bad name with spaces")
    assert code(err) == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        sm.put_secret_value(SecretId=name)
    assert code(err) == "InvalidRequestException"
    with pytest.raises(ClientError) as err:
        sm.rotate_secret(SecretId=name)
    assert code(err) == "InvalidRequestException" and "Lambda" in message(err)


def test_delete_and_restore(sm: Any) -> None:
    name = unique("del")
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as err:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert code(err) == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=6)
    assert code(err) == "InvalidParameterException"
    out = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as err:
        sm.get_secret_value(SecretId=name)
    assert code(err) == "InvalidRequestException"
    assert message(err) == "You can't perform this operation on the secret because it was marked for deletion."
    desc = sm.describe_secret(SecretId=name)
    assert "DeletedDate" in desc
    assert (out["DeletionDate"] - desc["DeletedDate"]).days == 7
    names = [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert names == []
    names = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True,
                                                Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert names == [name]
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as err:
        sm.describe_secret(SecretId=name)
    assert code(err) == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="again")  # the name is free again


def test_list_filters_pagination_tags(sm: Any) -> None:
    prefix = unique("list")
    for i in range(5):
        sm.create_secret(Name=f"{prefix}/s{i}", Description=f"desc {i}",
                         Tags=[{"Key": "idx", "Value": str(i)}, {"Key": "grp", "Value": prefix}])
    flt = [{"Key": "name", "Values": [prefix]}]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Filters": flt, "MaxResults": 2}
    while True:
        page = sm.list_secrets(**kwargs)
        seen += [s["Name"] for s in page["SecretList"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == [f"{prefix}/s{i}" for i in range(5)]
    desc = sm.list_secrets(Filters=flt, SortOrder="desc")["SecretList"]
    assert [s["Name"] for s in desc] == [f"{prefix}/s{i}" for i in reversed(range(5))]
    by_tag = sm.list_secrets(Filters=[{"Key": "tag-value", "Values": [prefix]}, {"Key": "tag-key", "Values": ["idx"]},
                                      {"Key": "description", "Values": ["desc 3"]}])["SecretList"]
    assert [s["Name"] for s in by_tag] == [f"{prefix}/s3"]
    negated = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]},
                                       {"Key": "description", "Values": ["!desc 3"]}])["SecretList"]
    assert len(negated) == 4

    sm.tag_resource(SecretId=f"{prefix}/s0", Tags=[{"Key": "extra", "Value": "1"}])
    sm.untag_resource(SecretId=f"{prefix}/s0", TagKeys=["idx"])
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=f"{prefix}/s0")["Tags"]}
    assert tags == {"grp": prefix, "extra": "1"}

    for i in range(3):
        sm.put_secret_value(SecretId=f"{prefix}/s{i}", SecretString=f"value-{i}")
    batch = sm.batch_get_secret_value(SecretIdList=[f"{prefix}/s0", f"{prefix}/s1", f"{prefix}/missing"])
    assert sorted(v["SecretString"] for v in batch["SecretValues"]) == ["value-0", "value-1"]
    assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_get_random_password(sm: Any) -> None:
    pw = sm.get_random_password()["RandomPassword"]
    assert len(pw) == 32 and " " not in pw
    pw = sm.get_random_password(PasswordLength=50, ExcludePunctuation=True, ExcludeCharacters="abcABC123")["RandomPassword"]
    assert len(pw) == 50 and pw.isalnum() and not set(pw) & set("abcABC123")
    assert any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw)
    pw = sm.get_random_password(PasswordLength=12, ExcludeNumbers=True, ExcludeLowercase=True,
                                ExcludeUppercase=True)["RandomPassword"]
    assert not any(c.isalnum() for c in pw)
    assert " " in "".join(sm.get_random_password(PasswordLength=200, IncludeSpace=True)["RandomPassword"])
    with pytest.raises(ClientError) as err:
        sm.get_random_password(PasswordLength=3)
    assert code(err) == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        sm.get_random_password(ExcludeNumbers=True, ExcludeLowercase=True, ExcludeUppercase=True,
                               ExcludePunctuation=True)
    assert code(err) == "InvalidParameterException"


def test_rotation_with_lambda_is_stored(sm: Any) -> None:
    name = unique("rot")
    sm.create_secret(Name=name, SecretString="v")
    fn = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
    out = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 10},
                           RotateImmediately=False)
    assert "VersionId" not in out
    desc = sm.describe_secret(SecretId=name)
    assert desc["RotationEnabled"] is True and desc["RotationLambdaARN"] == fn
    assert desc["RotationRules"] == {"AutomaticallyAfterDays": 10}
    assert (desc["NextRotationDate"] - desc["LastChangedDate"]).days in (9, 10)
    sm.rotate_secret(SecretId=name, RotationRules={"ScheduleExpression": "cron(0 4 ? * MON *)"},
                     RotateImmediately=False)
    assert sm.describe_secret(SecretId=name)["NextRotationDate"].weekday() in (0, 6)  # Monday 04:00 UTC
    with pytest.raises(ClientError) as err:
        sm.rotate_secret(SecretId=name, RotationRules={"ScheduleExpression": "rate(1 hours)"})
    assert code(err) == "InvalidParameterException"
    sm.cancel_rotate_secret(SecretId=name)
    assert sm.describe_secret(SecretId=name)["RotationEnabled"] is False


def test_resource_policy_allows_named_user_and_denies(server: Server, sm: Any, make_user: Any) -> None:
    name = unique("rp")
    arn = sm.create_secret(Name=name, SecretString="shared")["ARN"]
    reader: UserKeys = make_user()  # no identity policy at all
    rsm = server.client("secretsmanager", reader.access_key, reader.secret_key)
    with pytest.raises(ClientError) as err:
        rsm.get_secret_value(SecretId=arn)
    assert code(err) == "AccessDeniedException"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": reader.arn}, "Action": "secretsmanager:GetSecretValue",
        "Resource": "*"}]}
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(policy), BlockPublicPolicy=True)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == policy
    assert rsm.get_secret_value(SecretId=arn)["SecretString"] == "shared"

    admin: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})
    asm = server.client("secretsmanager", admin.access_key, admin.secret_key)
    assert asm.get_secret_value(SecretId=arn)["SecretString"] == "shared"
    deny = {"Version": "2012-10-17", "Statement": [
        policy["Statement"][0],
        {"Effect": "Deny", "Principal": {"AWS": admin.arn}, "Action": "secretsmanager:GetSecretValue",
         "Resource": "*"}]}
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(deny))
    with pytest.raises(ClientError) as err:
        asm.get_secret_value(SecretId=arn)
    assert code(err) == "AccessDeniedException"
    assert rsm.get_secret_value(SecretId=arn)["SecretString"] == "shared"

    public = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    with pytest.raises(ClientError) as err:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(public), BlockPublicPolicy=True)
    assert code(err) == "PublicPolicyException"
    with pytest.raises(ClientError) as err:
        sm.put_resource_policy(SecretId=name, ResourcePolicy='{"Statement": [')
    assert code(err) == "MalformedPolicyDocumentException"
    ok = sm.validate_resource_policy(SecretId=name, ResourcePolicy=json.dumps(policy))
    assert ok["PolicyValidationPassed"] is True
    bad = sm.validate_resource_policy(ResourcePolicy=json.dumps(public))
    assert bad["PolicyValidationPassed"] is False and bad["ValidationErrors"]
    sm.delete_resource_policy(SecretId=name)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    with pytest.raises(ClientError) as err:
        rsm.get_secret_value(SecretId=arn)
    assert code(err) == "AccessDeniedException"


def test_identity_policy_conditions(server: Server, sm: Any, make_user: Any) -> None:
    name = unique("cond")
    arn = sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "env", "Value": "prod"}])["ARN"]
    other = sm.create_secret(Name=unique("cond"), SecretString="y", Tags=[{"Key": "env", "Value": "dev"}])["ARN"]
    user: UserKeys = make_user({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringEquals": {"secretsmanager:ResourceTag/env": "prod"}}}]})
    usm = server.client("secretsmanager", user.access_key, user.secret_key)
    assert usm.get_secret_value(SecretId=name)["SecretString"] == "x"
    with pytest.raises(ClientError) as err:
        usm.get_secret_value(SecretId=other)
    assert code(err) == "AccessDeniedException"
    creator: UserKeys = make_user({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:CreateSecret",
        "Resource": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:team/{name}-??????"}]})
    csm = server.client("secretsmanager", creator.access_key, creator.secret_key)
    csm.create_secret(Name=f"team/{name}")
    with pytest.raises(ClientError) as err:
        csm.create_secret(Name=f"other/{name}")
    assert code(err) == "AccessDeniedException"
    assert arn


def test_customer_key_needs_kms_decrypt_and_disabled_key_fails(server: Server, sm: Any, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key(Description="secrets")["KeyMetadata"]
    name = unique("cmk")
    arn = sm.create_secret(Name=name, SecretString="protected", KmsKeyId=key["KeyId"])["ARN"]
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key["Arn"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "protected"

    sm_only: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}]})
    with pytest.raises(ClientError) as err:
        server.client("secretsmanager", sm_only.access_key, sm_only.secret_key).get_secret_value(SecretId=arn)
    assert code(err) == "AccessDeniedException"
    both: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key["Arn"]}]})
    bsm = server.client("secretsmanager", both.access_key, both.secret_key)
    assert bsm.get_secret_value(SecretId=arn)["SecretString"] == "protected"

    # the default key needs no KMS permission of the caller
    plain = sm.create_secret(Name=unique("aws-key"), SecretString="p")["ARN"]
    reader: UserKeys = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": plain}]})
    rsm = server.client("secretsmanager", reader.access_key, reader.secret_key)
    assert rsm.get_secret_value(SecretId=plain)["SecretString"] == "p"

    kms.disable_key(KeyId=key["KeyId"])
    try:
        with pytest.raises(ClientError) as err:
            sm.get_secret_value(SecretId=name)
        assert code(err) == "DecryptionFailure"
        with pytest.raises(ClientError) as err:
            sm.put_secret_value(SecretId=name, SecretString="new")
        assert code(err) == "EncryptionFailure"
    finally:
        kms.enable_key(KeyId=key["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "protected"
