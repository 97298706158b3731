"""Attack (adversarial review, second pass): tags given at creation are tagging. AWS authorizes them
with the service's tagging action as well (rds:AddTagsToResource, ec2:CreateTags with
ec2:CreateAction, secretsmanager:TagResource, kms:TagResource, iam:TagUser/TagRole/TagPolicy), so a
Deny on tagging is not sidestepped by creating a resource already tagged."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, unique

DENIED = {"rds": "AccessDenied", "ec2": "UnauthorizedOperation", "secretsmanager": "AccessDeniedException",
          "kms": "AccessDeniedException", "iam": "AccessDenied"}


def test_tags_at_creation_need_the_tagging_action(server: Server, make_user: Any) -> None:
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rds:*", "ec2:*", "secretsmanager:*", "kms:*", "iam:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["rds:AddTagsToResource", "ec2:CreateTags", "secretsmanager:TagResource",
                                      "kms:TagResource", "iam:TagUser", "iam:TagRole", "iam:TagPolicy"],
         "Resource": "*"}]})

    def client(service: str) -> Any:
        return server.client(service, user.access_key, user.secret_key)

    rds, ec2, sm, kms, iam = (client(s) for s in ("rds", "ec2", "secretsmanager", "kms", "iam"))
    tag = [{"Key": "owner", "Value": "someone-else"}]
    name = f"tagged-{secrets.token_hex(3)}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:x",
                                                                    "Resource": "*"}]})
    calls: list[tuple[str, Any, dict[str, Any]]] = [
        ("rds", rds.create_db_cluster_parameter_group, {
            "DBClusterParameterGroupName": name, "DBParameterGroupFamily": "aurora-postgresql16",
            "Description": "d", "Tags": tag}),
        ("ec2", ec2.create_security_group, {
            "GroupName": name, "Description": "d",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": tag}]}),
        ("secretsmanager", sm.create_secret, {"Name": name, "SecretString": "x", "Tags": tag}),
        ("kms", kms.create_key, {"Tags": [{"TagKey": "owner", "TagValue": "someone-else"}]}),
        ("iam", iam.create_user, {"UserName": unique("tagged"), "Tags": tag}),
        ("iam", iam.create_role, {"RoleName": unique("tagged"), "AssumeRolePolicyDocument": trust, "Tags": tag}),
        ("iam", iam.create_policy, {"PolicyName": unique("tagged"), "PolicyDocument": document, "Tags": tag}),
    ]
    for service, call, kwargs in calls:
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert info.value.response["Error"]["Code"] == DENIED[service], (service, info.value.response)
    # without tags the same creates are the caller's to make
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=name, DBParameterGroupFamily="aurora-postgresql16",
                                          Description="d")
    group = ec2.create_security_group(GroupName=name, Description="d")["GroupId"]
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    root = server.client("rds")
    root.delete_db_cluster_parameter_group(DBClusterParameterGroupName=name)
    server.client("ec2").delete_security_group(GroupId=group)
    server.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
